package api

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"
)

// The JSON of events is written by hand so that Data goes out byte for
// byte: encoding/json compacts (and HTML-escapes) raw values. The server
// writes every stored event this way, the CLI's JSON output too, and the
// client every published one.

// AppendJSON appends the event's JSON object to b, with Data written as
// stored, without encoding/json.
func (e *Event) AppendJSON(b []byte) []byte { return e.appendJSON(b, true, true) }

// AppendEnvelope appends the webhook envelope of the event to b: the JSON
// object without the hash, Data as stored.
func (e *Event) AppendEnvelope(b []byte) []byte { return e.appendJSON(b, false, true) }

// AppendJSONWithoutData appends the event's JSON object without "data":
// the answer to a publish that asked for PreferMinimal.
func (e *Event) AppendJSONWithoutData(b []byte) []byte { return e.appendJSON(b, true, false) }

func (e *Event) appendJSON(b []byte, hash, data bool) []byte {
	b = append(b, `{"id":`...)
	b = appendJSONString(b, e.ID)
	b = append(b, `,"store":`...)
	b = appendJSONString(b, e.Store)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, e.Seq, 10)
	b = append(b, `,"type":`...)
	b = appendJSONString(b, e.Type)
	b = append(b, `,"timestamp":"`...)
	b = e.Timestamp.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","version":`...)
	b = appendJSONString(b, e.Version)
	if !data {
		b = append(b, `,"hash":"`...)
		b = append(b, e.Hash...)
		return append(b, `"}`...)
	}
	b = append(b, `,"data":`...)
	if len(e.Data) == 0 {
		b = append(b, "null"...)
	} else {
		b = append(b, e.Data...)
	}
	if !hash {
		return append(b, '}')
	}
	b = append(b, `,"hash":"`...)
	b = append(b, e.Hash...)
	return append(b, `"}`...)
}

// appendJSONString appends s as a JSON string. Validated fields are ASCII
// without quotes or control characters, but ids and versions may hold
// anything printable, so escape properly.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			b = append(b, c)
			i++
			continue
		}
		if c < utf8.RuneSelf {
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, `\u00`...)
				b = append(b, "0123456789abcdef"[c>>4], "0123456789abcdef"[c&0xf])
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

// appendNewEvent appends a publish body's event: Data byte for byte (nil
// is the JSON null), the other fields as JSON strings, empty ones left
// out. It fails when Data is not one JSON value.
func appendNewEvent(b []byte, e *NewEvent) ([]byte, error) {
	data := e.Data
	if len(data) == 0 {
		data = []byte("null")
	} else if !json.Valid(data) {
		return b, fmt.Errorf("api: event data is not JSON: %.40q", data)
	}
	b = append(b, '{')
	if e.ID != "" {
		b = append(b, `"id":`...)
		b = appendJSONString(b, e.ID)
		b = append(b, ',')
	}
	b = append(b, `"type":`...)
	b = appendJSONString(b, e.Type)
	if e.Version != "" {
		b = append(b, `,"version":`...)
		b = appendJSONString(b, e.Version)
	}
	b = append(b, `,"data":`...)
	b = append(b, data...)
	return append(b, '}'), nil
}

// publishBody is the body of a publish: one event, or a batch.
func publishBody(evs []NewEvent, batch bool) ([]byte, error) {
	size := 32
	for i := range evs {
		size += len(evs[i].Data) + len(evs[i].Type) + len(evs[i].ID) + 48
	}
	b := make([]byte, 0, size)
	if !batch {
		return appendNewEvent(b, &evs[0])
	}
	b = append(b, `{"events":[`...)
	for i := range evs {
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		if b, err = appendNewEvent(b, &evs[i]); err != nil {
			return nil, fmt.Errorf("%w (event %d)", err, i)
		}
	}
	return append(b, "]}"...), nil
}
