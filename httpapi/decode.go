package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/herald-io/herald/api"
)

// Request decoding and response writing shared by the handlers.

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// writeJSONBytes writes a ready-made JSON body.
func writeJSONBytes(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(body)
}

// writeJSON encodes v (never an event: see api.Event.AppendJSON).
func (a *API) writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSONBytes(w, status, buf.Bytes())
}

func appendString(b []byte, s string) []byte {
	q, _ := json.Marshal(s)
	return append(b, q...)
}

// checkJSONContentType accepts application/json (and any +json type), and
// no Content-Type only for an empty body. Anything else (a form, text/plain:
// what a page of another site can send without asking) is refused.
func checkJSONContentType(r *http.Request, body []byte) error {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		if len(bytes.TrimSpace(body)) == 0 {
			return nil
		}
		return reqErr(api.CodeUnsupportedMediaType, "a body needs Content-Type: application/json")
	}
	mt := strings.TrimSpace(strings.ToLower(strings.SplitN(ct, ";", 2)[0]))
	if mt == "application/json" || strings.HasSuffix(mt, "+json") {
		return nil
	}
	return reqErr(api.CodeUnsupportedMediaType, "Content-Type %.100q: send application/json", ct)
}

// readBody reads a request body of at most limit bytes, which must be
// JSON (checkJSONContentType).
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if err := checkJSONContentType(r, nil); err != nil {
			return nil, err // refused before the body is read
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, reqErr(api.CodePayloadTooLarge, "body is larger than %d bytes", limit)
		}
		return nil, reqErr(api.CodeInvalidJSON, "reading body: %v", err)
	}
	if err := checkJSONContentType(r, body); err != nil {
		return nil, err
	}
	return body, nil
}

// decodeStrict decodes exactly one JSON object into v, refusing unknown
// fields and trailing data. A body that is not JSON is invalid_json; one
// whose fields do not fit v is reported with fieldCode (invalid_event for
// a publish, invalid_subscription for a subscription, ...).
func decodeStrict(body []byte, v any, fieldCode api.ErrorCode) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return reqErr(api.CodeInvalidJSON, "empty body: send a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se), errors.Is(err, io.ErrUnexpectedEOF):
			return reqErr(api.CodeInvalidJSON, "malformed JSON: %v", err)
		case errors.As(err, &te):
			if te.Field == "" {
				return reqErr(fieldCode, "expected a JSON object, got JSON %s", te.Value)
			}
			return reqErr(fieldCode, "field %q: expected %s, got JSON %s", te.Field, jsonKind(te.Type.String()), te.Value)
		case strings.HasPrefix(err.Error(), "json: unknown field"):
			return reqErr(fieldCode, "%s", strings.TrimPrefix(err.Error(), "json: "))
		}
		return reqErr(api.CodeInvalidJSON, "malformed JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return reqErr(api.CodeInvalidJSON, "unexpected data after the JSON object")
	}
	return nil
}

// jsonKind names a Go type as the JSON a client should send.
func jsonKind(goType string) string {
	t := strings.TrimLeft(goType, "*")
	switch {
	case t == "string":
		return "a string"
	case t == "bool":
		return "true or false"
	case t == "int", t == "int64", t == "uint64", t == "uint32", t == "int32", t == "float64":
		return "a number"
	case strings.HasPrefix(t, "[]"):
		return "an array"
	}
	return "an object"
}

// decodeOptional decodes a body that may be empty.
func decodeOptional(body []byte, v any, fieldCode api.ErrorCode) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	return decodeStrict(body, v, fieldCode)
}

// consistency parses ?consistency=.
func consistency(r *http.Request) (api.Consistency, error) {
	switch c := api.Consistency(r.URL.Query().Get("consistency")); c {
	case "":
		return api.ConsistencyLeader, nil
	case api.ConsistencyLocal, api.ConsistencyLeader, api.ConsistencyLinearizable:
		return c, nil
	default:
		return "", reqErr(api.CodeInvalidParameter, "consistency=%q: use local, leader or linearizable", string(c))
	}
}

// parseUintParam parses an optional non-negative integer parameter.
func parseUintParam(r *http.Request, name string) (uint64, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, reqErr(api.CodeInvalidParameter, "%s=%.100q: must be a non-negative integer", name, s)
	}
	if n > math.MaxInt64 {
		// Past any seq or attempt id (after+1 would overflow).
		return 0, reqErr(api.CodeInvalidParameter, "%s=%s: at most %d", name, s, int64(math.MaxInt64))
	}
	return n, nil
}

// parseLimit parses ?limit= (1-MaxLimit, default DefaultLimit).
func parseLimit(r *http.Request) (int, error) {
	s := r.URL.Query().Get("limit")
	if s == "" {
		return api.DefaultLimit, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > api.MaxLimit {
		return 0, reqErr(api.CodeInvalidParameter, "limit=%q: must be 1-%d", s, api.MaxLimit)
	}
	return n, nil
}

// parseDuration parses a Go duration string of a request body field.
func parseDuration(code api.ErrorCode, field, s string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, reqErr(code, "%s: %q is not a duration such as \"500ms\", \"5s\", \"2h\"", field, s)
	}
	return d, nil
}

// formatDuration writes d compactly: "5m" rather than "5m0s".
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// utcTime turns unix nanoseconds into a UTC time (zero for 0).
func utcTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}
