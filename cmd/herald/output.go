package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/herald-io/herald/api"
)

// Output: with -o json every answer is the API's JSON object on one line
// (events: one object per event per line, written by api.Event.AppendJSON
// so that data is byte for byte as stored); the default is tables for
// people.

// writeJSON writes v as one line of JSON, without HTML escaping.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// appendEventLine appends the event's JSON object (api.Event.AppendJSON:
// data byte for byte) and a newline. Line breaks in the data, which can
// only be JSON whitespace (a string cannot hold one), become spaces, so
// that every event is one line.
func appendEventLine(b []byte, e *api.Event) []byte {
	if bytes.ContainsAny(e.Data, "\r\n") {
		c := *e
		c.Data = bytes.Clone(e.Data)
		for i, ch := range c.Data {
			if ch == '\n' || ch == '\r' {
				c.Data[i] = ' '
			}
		}
		e = &c
	}
	return append(e.AppendJSON(b), '\n')
}

// writeEventLines writes each event as one line of JSON.
func writeEventLines(w io.Writer, evs []api.Event) error {
	var b []byte
	for i := range evs {
		b = appendEventLine(b, &evs[i])
		if len(b) > 64<<10 {
			if _, err := w.Write(b); err != nil {
				return err
			}
			b = b[:0]
		}
	}
	_, err := w.Write(b)
	return err
}

func newTable(w io.Writer, header ...string) *tabwriter.Writer {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	return tw
}

func row(tw io.Writer, cells ...any) {
	s := make([]string, len(cells))
	for i, c := range cells {
		s[i] = fmt.Sprint(c)
	}
	fmt.Fprintln(tw, strings.Join(s, "\t"))
}

// timeLayout is RFC 3339 with milliseconds.
const timeLayout = "2006-01-02T15:04:05.000Z07:00"

// fmtTime is t in local time, "-" for the zero time.
func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.In(time.Local).Format(timeLayout)
}

// dataWidth is how much of an event's data a table shows.
const dataWidth = 60

// fmtData is an event's data compacted, cut at dataWidth characters.
func fmtData(raw json.RawMessage) string {
	return cut(compact(raw), dataWidth)
}

func compact(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "null"
	}
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return string(raw)
	}
	return b.String()
}

func cut(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// kv prints "key: value" lines aligned.
type kv struct {
	tw *tabwriter.Writer
}

func newKV(w io.Writer) *kv { return &kv{tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)} }

func (k *kv) add(key string, value any) { fmt.Fprintf(k.tw, "%s:\t%v\n", key, value) }
func (k *kv) flush() error              { return k.tw.Flush() }

func sortedHeaders(h map[string]string, sensitive ...[]string) []string {
	keys := slices.Sorted(maps.Keys(h))
	out := make([]string, len(keys))
	for i, k := range keys {
		v := h[k]
		if len(sensitive) > 0 && slices.ContainsFunc(sensitive[0], func(n string) bool { return strings.EqualFold(n, k) }) {
			v = "(sensitive)"
		}
		out[i] = k + ": " + v
	}
	return out
}

// eventTable writes events as a table; status, when given, adds a column
// (publish: created or duplicate).
func eventTable(w io.Writer, evs []api.Event, status []string) error {
	header := []string{"SEQ", "ID", "TYPE", "VERSION", "TIMESTAMP", "DATA"}
	if status != nil {
		header = append(header, "STATUS")
	}
	tw := newTable(w, header...)
	for i, e := range evs {
		cells := []any{e.Seq, e.ID, e.Type, e.Version, fmtTime(e.Timestamp), fmtData(e.Data)}
		if status != nil {
			cells = append(cells, status[i])
		}
		row(tw, cells...)
	}
	return tw.Flush()
}

// followRow is one event of --follow in table mode: rows are written as
// they come, so columns have minimum widths instead of a tabwriter.
func followRow(w io.Writer, cells ...string) error {
	widths := []int{6, 30, 28, 7, 29}
	var b strings.Builder
	for i, c := range cells {
		b.WriteString(c)
		if i < len(cells)-1 {
			pad := 2
			if i < len(widths) {
				pad = max(widths[i]-utf8.RuneCountInString(c), 0) + 2
			}
			b.WriteString(strings.Repeat(" ", pad))
		}
	}
	b.WriteByte('\n')
	_, err := io.WriteString(w, b.String())
	return err
}

// eventBlock shows one event in full.
func eventBlock(w io.Writer, e *api.Event) error {
	k := newKV(w)
	k.add("id", e.ID)
	k.add("store", e.Store)
	k.add("seq", e.Seq)
	k.add("type", e.Type)
	k.add("version", e.Version)
	k.add("timestamp", fmtTime(e.Timestamp))
	k.add("hash", e.Hash)
	k.add("data", compact(e.Data))
	return k.flush()
}
