package siptest

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// Template is a captured SIPREC INVITE (one of testdata/siprec): its extra headers and its body. The SRC
// replaces the routing headers and the SDP addresses with its own.
type Template struct {
	Headers [][2]string // name, value: everything but the routing headers the SRC writes itself
	Body    string      // CRLF line ends
	// SRCContact: the captured Contact carried the +sip.src (or src) feature tag, so ours does too.
	SRCContact bool
}

// routingHeaders are written by the SRC (sipgo) and dropped from a template.
var routingHeaders = map[string]bool{
	"via": true, "from": true, "to": true, "call-id": true, "cseq": true, "contact": true,
	"max-forwards": true, "content-length": true, "l": true, "v": true, "f": true, "t": true, "i": true, "m": true,
}

// LoadTemplate reads a sample message file: an optional "# source:" first line, a request line, headers, a
// blank line and the body. Files are stored with LF; the body gets CRLF as on the wire.
func LoadTemplate(path string) (*Template, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseTemplate(string(b))
}

// ParseTemplate is LoadTemplate on a string.
func ParseTemplate(msg string) (*Template, error) {
	msg = strings.ReplaceAll(msg, "\r\n", "\n")
	msg = trailingSpace.ReplaceAllString(msg, "")
	if strings.HasPrefix(msg, "# source:") {
		_, msg, _ = strings.Cut(msg, "\n")
	}
	head, body, ok := strings.Cut(msg, "\n\n")
	if !ok {
		// Some partial captures lost the blank line: the body starts at its SDP.
		if head, body, ok = strings.Cut(msg, "\nv=0\n"); !ok {
			return nil, fmt.Errorf("siptest: template has no blank line between headers and body")
		}
		body = "v=0\n" + body
	}
	t := &Template{Body: strings.ReplaceAll(body, "\n", "\r\n")}
	sc := bufio.NewScanner(strings.NewReader(head))
	first := true
	for sc.Scan() {
		line := sc.Text()
		if first {
			first = false
			if strings.HasPrefix(line, "INVITE ") {
				continue
			}
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch lname := strings.ToLower(strings.TrimSpace(name)); {
		case lname == "contact" || lname == "m":
			t.SRCContact = strings.Contains(value, "+sip.src") || strings.Contains(value, ";src")
			continue
		case routingHeaders[lname]:
			continue
		}
		t.Headers = append(t.Headers, [2]string{strings.TrimSpace(name), strings.TrimSpace(value)})
	}
	return t, nil
}

var (
	trailingSpace = regexp.MustCompile(`(?m)[ \t]+$`)
	connLine      = regexp.MustCompile(`(?m)^c=IN IP4 \S+`)
	originIP      = regexp.MustCompile(`(?m)^(o=.* IN IP4 )\S+`)
	audioLine     = regexp.MustCompile(`(?m)^m=audio \d+ `)
)

// rewriteSDP points the body's SDP at ip and gives the audio m-lines the given ports, in order. It returns
// the body and how many audio m-lines it holds.
func rewriteSDP(body, ip string, ports func(i int) int) (string, int) {
	body = connLine.ReplaceAllString(body, "c=IN IP4 "+ip)
	body = originIP.ReplaceAllString(body, "${1}"+ip)
	n := 0
	body = audioLine.ReplaceAllStringFunc(body, func(string) string {
		p := ports(n)
		n++
		return "m=audio " + strconv.Itoa(p) + " "
	})
	return body, n
}
