package sip

import (
	"errors"
	"fmt"
	"strings"

	"github.com/siphook/siphook/matcher"
)

// ErrInvalidUserToUser is returned for a User-to-User value that is empty, too long or not the hex it claims.
var ErrInvalidUserToUser = errors.New("sip: invalid User-to-User value")

// maxUUIValue bounds a User-to-User header value. RFC 7433 data is at most a few hundred characters;
// Genesys itself advises 128.
const maxUUIValue = 1024

// UUI is a parsed User-to-User header (RFC 7433) value. The AudioCodes x-User-To-User header has the same
// syntax.
type UUI struct {
	Data             string // the data before the first ';', trimmed (hex upper-cased when the encoding is hex)
	Encoding         string // "hex" (default when absent), "ascii", …
	Purpose, Content string
	PD               string // ;pd= protocol discriminator parameter, if any
}

// ParseUserToUser parses a User-to-User header value such as
// "04FA08…;encoding=hex;purpose=isdn-uui;content=isdn-uui". Parameter names and the encoding are
// case-insensitive; unknown parameters are ignored.
func ParseUserToUser(value string) (UUI, error) {
	if len(value) > maxUUIValue {
		return UUI{}, fmt.Errorf("%w: longer than %d characters", ErrInvalidUserToUser, maxUUIValue)
	}
	data, params, _ := strings.Cut(value, ";")
	u := UUI{Data: strings.TrimSpace(data), Encoding: "hex"}
	if u.Data == "" {
		return UUI{}, fmt.Errorf("%w: no data", ErrInvalidUserToUser)
	}
	for _, param := range strings.Split(params, ";") {
		name, val, _ := strings.Cut(param, "=")
		val = strings.Trim(strings.TrimSpace(val), `"`)
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "encoding":
			u.Encoding = strings.ToLower(val)
		case "purpose":
			u.Purpose = val
		case "content":
			u.Content = val
		case "pd":
			u.PD = val
		}
	}
	if u.Encoding == "hex" {
		if strings.Trim(u.Data, "0123456789abcdefABCDEF") != "" {
			return UUI{}, fmt.Errorf("%w: encoding=hex but data is not hex", ErrInvalidUserToUser)
		}
		u.Data = strings.ToUpper(u.Data)
	}
	return u, nil
}

// UCID returns the Avaya UCID the data carries, if any (via matcher.ParseUCID).
func (u UUI) UCID() (matcher.UCID, bool) {
	return matcher.ParseUCID(u.Data)
}
