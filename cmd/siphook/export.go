package main

import (
	"cmp"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/siphook/siphook/recorder"
)

// exportColumns are the columns of Verint's Genesys metadata template, in its order: an export opens in the
// tools built for it. exportRow says where each comes from.
var exportColumns = []string{
	"Start Date and Time", "End Date and Time", "Duration", "User", "From", "From Info", "To", "To Info",
	"Direction", "Direction (User)", "Platform Call ID", "Silence Ratio", "Talkover Ratio", "Longest Silence",
	"Media Error", "Voice Quality", "Audio Codec", "Media Length", "Source Platform", "Conversation Type",
}

// exportTime is how times are written: UTC, to the second.
const exportTime = "2006-01-02 15:04:05"

// export writes the recordings that started in [from, to) as CSV or JSON with the template's columns.
func export(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	format := fs.String("format", "csv", "csv or json")
	fromFlag := fs.String("from", "", "first start time (RFC 3339 or YYYY-MM-DD, UTC); default: today")
	toFlag := fs.String("to", "", "end of the range, exclusive (RFC 3339 or YYYY-MM-DD); default: a day after -from")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *format != "csv" && *format != "json" {
		return fmt.Errorf("-format %q: want csv or json", *format)
	}
	dir := recorder.DefaultDir
	if fs.NArg() > 0 {
		dir = fs.Arg(0)
	}
	from := time.Now().UTC().Truncate(24 * time.Hour)
	if *fromFlag != "" {
		var err error
		if from, err = parseExportTime(*fromFlag); err != nil {
			return fmt.Errorf("-from: %w", err)
		}
	}
	to := from.Add(24 * time.Hour)
	if *toFlag != "" {
		var err error
		if to, err = parseExportTime(*toFlag); err != nil {
			return fmt.Errorf("-to: %w", err)
		}
	}
	if !to.After(from) {
		return errors.New("-to must be after -from")
	}
	docs, err := documentsBetween(dir, from, to)
	if err != nil {
		return err
	}
	rows := make([][]string, len(docs))
	for i, doc := range docs {
		rows[i] = exportRow(doc)
	}
	if *format == "json" {
		out := make([]map[string]string, len(rows))
		for i, row := range rows {
			out[i] = make(map[string]string, len(row))
			for j, v := range row {
				out[i][exportColumns[j]] = v
			}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	w := csv.NewWriter(stdout)
	w.Write(exportColumns)
	w.WriteAll(rows)
	return w.Error()
}

func parseExportTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Parse(time.RFC3339, s)
}

// documentsBetween reads the final documents of the recordings that started in [from, to), oldest first. It
// reads only the day directories the range covers.
func documentsBetween(dir string, from, to time.Time) ([]*recorder.Document, error) {
	if _, err := os.Stat(dir); err != nil {
		return nil, err
	}
	var docs []*recorder.Document
	for day := from.UTC().Truncate(24 * time.Hour); day.Before(to); day = day.Add(24 * time.Hour) {
		for _, doc := range readDocuments(filepath.Join(dir, day.Format("2006/01/02"))) {
			if doc.State != recorder.StateRecording && !doc.Start.Before(from) && doc.Start.Before(to) {
				docs = append(docs, doc)
			}
		}
	}
	slices.SortFunc(docs, func(a, b *recorder.Document) int { return a.Start.Compare(b.Start) })
	return docs, nil
}

// exportRow maps a document to the template's columns (see exportColumns and the README's table).
func exportRow(doc *recorder.Document) []string {
	var (
		agents                    []string
		ani, dnis, direction, cid string
		fromInfo, toInfo          string
	)
	if c := doc.Call; c != nil {
		for _, a := range c.Agents {
			agents = append(agents, cmp.Or(a.Name, a.UserID))
		}
		ani, dnis, direction, cid = c.ANI, c.DNIS, c.Direction, c.ConversationID
	}
	for _, p := range doc.Participants {
		switch p.Role {
		case "caller":
			ani, fromInfo = cmp.Or(ani, p.AOR), p.Name
		case "callee":
			dnis, toInfo = cmp.Or(dnis, p.AOR), p.Name
		}
	}
	cid = cmp.Or(cid, doc.Session["sip_call_id"], doc.RecordingID)
	end := doc.Start.Add(time.Duration(doc.DurationSec * float64(time.Second)))
	if doc.End != nil {
		end = *doc.End
	}
	var silence, talkOver, longest, mediaErrors, quality string
	if a := doc.Analytics; a != nil {
		silence = strconv.FormatFloat(100*a.SilenceRatio, 'f', 1, 64)
		talkOver = strconv.FormatFloat(100*a.TalkOverRatio, 'f', 1, 64)
		longest = strconv.FormatFloat(a.LongestSilenceSec, 'f', 1, 64)
		mediaErrors = mediaErrorSummary(a.MediaErrors)
		if a.MOS > 0 {
			quality = strconv.FormatFloat(a.MOS, 'f', 2, 64)
		}
	}
	var codecs []string
	for _, c := range doc.Channels {
		if c.Codec != "" && !slices.Contains(codecs, c.Codec) {
			codecs = append(codecs, c.Codec)
		}
	}
	var mediaLength string
	if a := doc.Audio; a != nil && a.SampleRate > 0 {
		mediaLength = clock(float64(a.Samples) / float64(a.SampleRate))
	}
	return []string{
		doc.Start.UTC().Format(exportTime), end.UTC().Format(exportTime), clock(doc.DurationSec),
		strings.Join(agents, ", "), number(ani), fromInfo, number(dnis), toInfo,
		titleCase(direction), userDirection(direction), cid,
		silence, talkOver, longest, mediaErrors, quality,
		strings.Join(codecs, ", "), mediaLength, sourcePlatform(doc.Source), "Voice",
	}
}

// mediaErrorSummary counts each kind: "ssrc_change:1;timestamp_jump:2".
func mediaErrorSummary(errs []recorder.MediaError) string {
	counts := map[string]int{}
	var kinds []string
	for _, e := range errs {
		if counts[e.Type] == 0 {
			kinds = append(kinds, e.Type)
		}
		counts[e.Type]++
	}
	parts := make([]string, len(kinds))
	for i, k := range kinds {
		parts[i] = fmt.Sprintf("%s:%d", k, counts[k])
	}
	return strings.Join(parts, ";")
}

// clock formats seconds as H:MM:SS.
func clock(sec float64) string {
	s := int64(sec + 0.5)
	return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
}

// number is the user part of a sip:/tel: address, or the address itself.
func number(addr string) string {
	for _, scheme := range []string{"sip:", "sips:", "tel:"} {
		if rest, ok := strings.CutPrefix(addr, scheme); ok {
			user, _, _ := strings.Cut(rest, "@")
			user, _, _ = strings.Cut(user, ";")
			return user
		}
	}
	return addr
}

func titleCase(s string) string {
	if s == "" {
		return ""
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// userDirection is the direction as the agent sees it.
func userDirection(direction string) string {
	switch direction {
	case "inbound":
		return "To User"
	case "outbound":
		return "From User"
	}
	return ""
}

func sourcePlatform(source string) string {
	switch source {
	case "siprec":
		return "SIPREC"
	case "audiohook":
		return "Genesys AudioHook"
	}
	return source
}
