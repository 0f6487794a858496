package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// errHandler wraps an error fn returned, to tell it from a broken stream.
type errHandler struct{ err error }

func (e *errHandler) Error() string { return e.err.Error() }

// Stream follows a store's events over server-sent events (GET
// /v1/stores/{store}/events/stream) from o.After, calling fn for each in
// seq order. When the stream breaks (its node stops, a network fault) it
// reconnects, to the next address first, with Last-Event-ID, so the loss
// of a node costs neither a gap nor a duplicate. o.Wait is not used; the
// stream's consistency defaults to local. It returns fn's error, ctx's,
// or an API error that retrying cannot change.
func (c *Client) Stream(ctx context.Context, store string, o ReadOptions, fn func(Event) error) error {
	last := o.After
	backoff := 100 * time.Millisecond
	q := readQuery(ReadOptions{Limit: o.Limit, Types: o.Types, Consistency: o.Consistency})
	for {
		h := http.Header{"Last-Event-ID": {strconv.FormatUint(last, 10)}, "Accept": {"text/event-stream"}}
		resp, err := c.send(ctx, call{method: http.MethodGet, path: storePath(store) + "/events/stream", query: q, header: h, idempotent: true, noTimeout: true})
		if err == nil {
			backoff = 100 * time.Millisecond
			err = readEventStream(resp.Body, func(ev Event) error {
				if ev.Seq <= last {
					return nil // already had it
				}
				last = ev.Seq
				if err := fn(ev); err != nil {
					return &errHandler{err}
				}
				return nil
			})
			resp.Body.Close()
			var eh *errHandler
			if errors.As(err, &eh) {
				return eh.err
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var ae *Error
		if errors.As(err, &ae) && !ae.Retryable() {
			return err
		}
		// Broken or refused: the next address first, after a pause.
		if n := len(c.bases); n > 1 {
			c.preferred.Store((c.preferred.Load() + 1) % int32(n))
		}
		if err := sleep(ctx, backoff); err != nil {
			return err
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// readEventStream parses a text/event-stream body and calls fn with each
// message's event until the body ends (io.EOF is a nil error: the server
// ended the stream) or fn fails.
func readEventStream(r io.Reader, fn func(Event) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 2*MaxBodyBytes)
	var data strings.Builder
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if data.Len() == 0 {
				continue // a comment's end
			}
			var ev Event
			if err := json.Unmarshal([]byte(data.String()), &ev); err != nil {
				return fmt.Errorf("api: event stream: %w", err)
			}
			data.Reset()
			if err := fn(ev); err != nil {
				return err
			}
		case strings.HasPrefix(line, "data:"):
			if data.Len() > 0 {
				data.WriteByte('\n')
			}
			data.WriteString(strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		}
	}
	return sc.Err()
}
