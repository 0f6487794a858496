package httpapi

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/herald-io/herald/api"
	hlog "github.com/herald-io/herald/log"
	"github.com/julienschmidt/httprouter"
)

// publishIn is a publish body: one event, or a batch under "events".
type publishIn struct {
	api.NewEvent
	Events []api.NewEvent `json:"events"`
}

func toNew(e *api.NewEvent, i int, batch bool) (hlog.NewEvent, error) {
	where := ""
	if batch {
		where = "events[" + strconv.Itoa(i) + "]: "
	}
	if e.Type == "" {
		return hlog.NewEvent{}, reqErr(api.CodeInvalidEvent, "%smissing \"type\"", where)
	}
	if len(e.Data) == 0 {
		return hlog.NewEvent{}, reqErr(api.CodeInvalidEvent, "%smissing \"data\" (send null for no data)", where)
	}
	if e.ID == streamID {
		// GET …/events/stream is the event stream, not this event.
		return hlog.NewEvent{}, reqErr(api.CodeInvalidEvent, "%sthe id %q is reserved", where, streamID)
	}
	return hlog.NewEvent{ID: e.ID, Type: e.Type, Version: e.Version, Data: e.Data}, nil
}

func (a *API) publish(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	if i := infoOf(r.Context()); i != nil && a.onPublish != nil {
		i.publishedAt = time.Now() // withRequest reports the answer
	}
	store := ps.ByName("store")
	body, err := readBody(w, r, api.MaxBodyBytes)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var in publishIn
	if err := decodeStrict(body, &in, api.CodeInvalidEvent); err != nil {
		a.writeError(w, r, err)
		return
	}
	batch := in.Events != nil
	key := r.Header.Get(api.HeaderIdempotencyKey)
	var evs []hlog.NewEvent
	switch {
	case batch && (in.Type != "" || in.Data != nil || in.ID != "" || in.Version != ""):
		err = reqErr(api.CodeInvalidEvent, "send either one event or {\"events\":[...]}, not both")
	case batch && len(in.Events) == 0:
		err = reqErr(api.CodeInvalidEvent, "\"events\" is empty")
	case batch && len(in.Events) > api.MaxBatchEvents:
		err = reqErr(api.CodePayloadTooLarge, "%d events in one request; the limit is %d", len(in.Events), api.MaxBatchEvents)
	case batch && key != "":
		err = reqErr(api.CodeInvalidEvent, "Idempotency-Key applies to single-event requests; give each event of a batch an \"id\" instead")
	case batch:
		evs = make([]hlog.NewEvent, len(in.Events))
		for i := range in.Events {
			if evs[i], err = toNew(&in.Events[i], i, true); err != nil {
				break
			}
		}
	default:
		var ev hlog.NewEvent
		if ev, err = toNew(&in.NewEvent, 0, false); err == nil {
			ev.IdempotencyKey = key
			evs = []hlog.NewEvent{ev}
		}
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	res, err := a.svc.Events.Publish(r.Context(), PublishRequest{Store: store, Events: evs, Forwarded: r.Header.Get(api.HeaderForwarded) != ""})
	if err != nil {
		a.fail(w, r, body, err)
		return
	}
	status := http.StatusOK // every event was already stored
	for _, ap := range res {
		if !ap.Duplicate {
			status = http.StatusCreated
			break
		}
	}
	write := (*hlog.Event).AppendJSON
	if prefersMinimal(r) {
		write = (*hlog.Event).AppendJSONWithoutData
		w.Header().Set(api.HeaderPreferenceApplied, api.PreferMinimal)
	}
	bp := bufPool.Get().(*[]byte)
	b := (*bp)[:0]
	if batch {
		b = append(b, `{"events":[`...)
		for i := range res {
			if i > 0 {
				b = append(b, ',')
			}
			b = write(&res[i].Event, b)
		}
		b = append(b, "]}\n"...)
	} else {
		b = write(&res[0].Event, b)
		b = append(b, '\n')
		w.Header().Set("Location", "/v1/stores/"+store+"/events/"+res[0].Event.ID)
	}
	writeJSONBytes(w, status, b)
	*bp = b
	bufPool.Put(bp)
}

// prefersMinimal reports whether the client asked to have the events'
// data left out of the answer (Prefer: return=minimal, RFC 7240).
func prefersMinimal(r *http.Request) bool {
	for _, v := range r.Header.Values(api.HeaderPrefer) {
		for _, p := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(p), api.PreferMinimal) {
				return true
			}
		}
	}
	return false
}

func parseWait(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		n, ierr := strconv.Atoi(s)
		if ierr != nil {
			return 0, reqErr(api.CodeInvalidParameter, "wait=%q: give a duration such as 10s, or seconds", s)
		}
		d = time.Duration(n) * time.Second
	}
	if d < 0 || d > api.MaxWait {
		return 0, reqErr(api.CodeInvalidParameter, "wait=%q: must be between 0 and %v", s, api.MaxWait)
	}
	return d, nil
}

func (a *API) readEvents(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	req, err := parseReadRequest(r, ps.ByName("store"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	evs, next, err := a.svc.Events.Read(r.Context(), req)
	if err != nil {
		a.fail(w, r, nil, err)
		return
	}
	bp := bufPool.Get().(*[]byte)
	b := append((*bp)[:0], `{"events":[`...)
	for i := range evs {
		if i > 0 {
			b = append(b, ',')
		}
		b = evs[i].AppendJSON(b)
	}
	b = append(b, `],"next":`...)
	b = strconv.AppendUint(b, next, 10)
	b = append(b, "}\n"...)
	writeJSONBytes(w, http.StatusOK, b)
	*bp = b
	bufPool.Put(bp)
}

func parseReadRequest(r *http.Request, store string) (ReadRequest, error) {
	req := ReadRequest{Store: store}
	var err error
	if req.Consistency, err = consistency(r); err != nil {
		return req, err
	}
	if req.Options.After, err = parseUintParam(r, "after"); err != nil {
		return req, err
	}
	if req.Options.Limit, err = parseLimit(r); err != nil {
		return req, err
	}
	var pats []string
	for _, v := range r.URL.Query()["type"] {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				pats = append(pats, p)
			}
		}
	}
	if len(pats) > api.MaxQueryPatterns {
		return req, reqErr(api.CodeInvalidParameter, "type: at most %d patterns, not %d", api.MaxQueryPatterns, len(pats))
	}
	if req.Options.Types, err = hlog.ParsePatterns(pats); err != nil {
		return req, reqErr(api.CodeInvalidParameter, "type: %v", err)
	}
	if req.Wait, err = parseWait(r.URL.Query().Get("wait")); err != nil {
		return req, err
	}
	return req, nil
}

func (a *API) getEvent(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	if ps.ByName("id") == streamID {
		a.stream(w, r, ps)
		return
	}
	c, err := consistency(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	ev, err := a.svc.Events.Get(r.Context(), ps.ByName("store"), ps.ByName("id"), c)
	if err != nil {
		a.fail(w, r, nil, err)
		return
	}
	writeJSONBytes(w, http.StatusOK, append(ev.AppendJSON(nil), '\n'))
}
