package httpapi

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/herald-io/herald/api"
	"github.com/julienschmidt/httprouter"
)

// streamID is the last path segment of the event stream, which shares its
// place with an event id (httprouter cannot have both): an event cannot
// be published with this id.
const streamID = "stream"

// WithStreamHeartbeat sets how often an idle event stream sends a comment
// (default 15 s).
func WithStreamHeartbeat(d time.Duration) Option { return func(a *API) { a.heartbeat = d } }

// stream serves GET /v1/stores/{store}/events/stream: text/event-stream,
// one message per event (id: its seq, event: its type, data: the event
// JSON), from after= or the Last-Event-ID a reconnecting client sends, a
// comment every heartbeat while nothing comes. Each wait for events is a
// long poll of the node's (it counts towards the waiting reads' limit);
// the stream reads at the consistency asked for (default local: the
// answering node's own log, which has every event in order, possibly a
// little behind the leader).
func (a *API) stream(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	req, err := parseReadRequest(r, ps.ByName("store"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if r.URL.Query().Get("consistency") == "" {
		req.Consistency = api.ConsistencyLocal
	}
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		after, perr := strconv.ParseUint(strings.TrimSpace(v), 10, 63)
		if perr != nil {
			a.writeError(w, r, reqErr(api.CodeInvalidParameter, "Last-Event-ID must be a seq (0 to 9223372036854775807), not %.100q", v))
			return
		}
		req.Options.After = after
	}
	if req.Options.Limit == 0 {
		req.Options.Limit = api.MaxLimit
	}
	heartbeat := a.heartbeat
	if heartbeat <= 0 {
		heartbeat = 15 * time.Second
	}
	// The first read decides whether the stream can start: an error is an
	// ordinary JSON answer.
	req.Wait = 0
	evs, next, err := a.svc.Events.Read(r.Context(), req)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // a proxy must not hold messages back
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	out := &deadlineWriter{w: w, rc: rc, per: backupWriteTimeout} // each write bounded, as a backup's
	// The server's read timeout would end a stream that outlives it
	// (net/http cancels the request when its background read fails).
	rc.SetReadDeadline(time.Time{})
	buf := []byte(": stream of " + req.Store + " after " + strconv.FormatUint(req.Options.After, 10) + "\n\n")
	req.Wait = heartbeat
	for {
		if len(evs) == 0 && len(buf) == 0 {
			buf = append(buf, ": heartbeat\n\n"...)
		}
		for i := range evs {
			buf = append(buf, "id: "...)
			buf = strconv.AppendUint(buf, evs[i].Seq, 10)
			buf = append(buf, "\nevent: "...)
			buf = append(buf, evs[i].Type...)
			buf = append(buf, "\ndata: "...)
			buf = evs[i].AppendJSON(buf)
			buf = append(buf, "\n\n"...)
		}
		if _, err := out.Write(buf); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
		buf = buf[:0]
		if next > req.Options.After {
			req.Options.After = next
		}
		evs, next, err = a.svc.Events.Read(r.Context(), req)
		if err != nil {
			if r.Context().Err() == nil {
				// Say why, and end: the client resumes with Last-Event-ID.
				code, sentinel := classify(err)
				msg := strings.ReplaceAll(clipMessage(message(err, sentinel)), "\n", " ")
				out.Write([]byte(": error " + string(code) + ": " + msg + "\n\n"))
				rc.Flush()
			}
			return
		}
	}
}
