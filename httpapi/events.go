package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	hlog "github.com/herald-io/herald/log"
	"github.com/julienschmidt/httprouter"
)

// MaxWait bounds a long poll.
const MaxWait = 30 * time.Second

// eventIn is one event as a client sends it.
type eventIn struct {
	ID      string          `json:"id"`
	Type    *string         `json:"type"`
	Version string          `json:"version"`
	Data    json.RawMessage `json:"data"`
}

// publishIn is a publish body: one event, or a batch under "events".
type publishIn struct {
	eventIn
	Events []eventIn `json:"events"`
}

func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if err := checkJSONContentType(r); err != nil {
		return nil, err
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &requestError{status: http.StatusRequestEntityTooLarge, code: "payload_too_large", msg: fmt.Sprintf("body is larger than %d bytes", limit)}
		}
		return nil, &requestError{status: http.StatusBadRequest, code: "invalid_json", msg: "reading body: " + err.Error()}
	}
	return body, nil
}

// decodeStrict decodes exactly one JSON object, refusing unknown fields and
// trailing data.
func decodeStrict(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return badRequest("invalid_json", "empty body: send a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se), errors.Is(err, io.ErrUnexpectedEOF):
			return badRequest("invalid_json", "malformed JSON: %v", err)
		case errors.As(err, &te):
			return badRequest("invalid_event", "field %q: expected %s, got JSON %s", te.Field, te.Type, te.Value)
		case strings.HasPrefix(err.Error(), "json: unknown field"):
			return badRequest("invalid_event", "%s", strings.TrimPrefix(err.Error(), "json: "))
		}
		return badRequest("invalid_json", "malformed JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return badRequest("invalid_json", "unexpected data after the JSON object")
	}
	return nil
}

func (e *eventIn) toNew(i int, batch bool) (hlog.NewEvent, error) {
	where := ""
	if batch {
		where = fmt.Sprintf("events[%d]: ", i)
	}
	if e.Type == nil {
		return hlog.NewEvent{}, badRequest("invalid_event", "%smissing \"type\"", where)
	}
	if len(e.Data) == 0 {
		return hlog.NewEvent{}, badRequest("invalid_event", "%smissing \"data\" (send null for no data)", where)
	}
	return hlog.NewEvent{ID: e.ID, Type: *e.Type, Version: e.Version, Data: e.Data}, nil
}

func (a *API) publish(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	store := ps.ByName("store")
	if err := hlog.ValidateStoreName(store); err != nil {
		a.writeError(w, r, err)
		return
	}
	if store == hlog.HeraldStore {
		a.writeError(w, r, badRequest("reserved_store", "store %s holds Herald's own operational events; it cannot be published to", store))
		return
	}
	body, err := readBody(w, r, MaxBodyBytes)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var in publishIn
	if err := decodeStrict(body, &in); err != nil {
		a.writeError(w, r, err)
		return
	}
	batch := in.Events != nil
	key := r.Header.Get("Idempotency-Key")
	var evs []hlog.NewEvent
	switch {
	case batch && (in.Type != nil || in.Data != nil || in.ID != "" || in.Version != ""):
		err = badRequest("invalid_event", "send either one event or {\"events\":[...]}, not both")
	case batch && len(in.Events) == 0:
		err = badRequest("invalid_event", "\"events\" is empty")
	case batch && len(in.Events) > MaxBatchEvents:
		err = &requestError{status: http.StatusRequestEntityTooLarge, code: "payload_too_large", msg: fmt.Sprintf("%d events in one request; the limit is %d", len(in.Events), MaxBatchEvents)}
	case batch && key != "":
		err = badRequest("invalid_event", "Idempotency-Key applies to single-event requests; give each event of a batch an \"id\" instead")
	case batch:
		evs = make([]hlog.NewEvent, len(in.Events))
		for i := range in.Events {
			if evs[i], err = in.Events[i].toNew(i, true); err != nil {
				break
			}
		}
	default:
		var ev hlog.NewEvent
		if ev, err = in.eventIn.toNew(0, false); err == nil {
			ev.IdempotencyKey = key
			evs = []hlog.NewEvent{ev}
		}
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	res, err := a.svc.Publish(r.Context(), PublishRequest{Store: store, Events: evs, Forwarded: r.Header.Get(forwardedHeader) != ""})
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
	bp := bufPool.Get().(*[]byte)
	b := (*bp)[:0]
	if batch {
		b = append(b, `{"events":[`...)
		for i := range res {
			if i > 0 {
				b = append(b, ',')
			}
			b = res[i].Event.AppendJSON(b)
		}
		b = append(b, "]}\n"...)
	} else {
		b = res[0].Event.AppendJSON(b)
		b = append(b, '\n')
		w.Header().Set("Location", "/v1/stores/"+store+"/events/"+res[0].Event.ID)
	}
	writeJSONBytes(w, status, b)
	*bp = b
	bufPool.Put(bp)
}

// consistency parses ?consistency=.
func consistency(r *http.Request) (Consistency, error) {
	switch c := Consistency(r.URL.Query().Get("consistency")); c {
	case "":
		return Leader, nil
	case Local, Leader, Linearizable:
		return c, nil
	default:
		return "", badRequest("invalid_parameter", "consistency=%q: use local, leader or linearizable", string(c))
	}
}

func parseWait(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		n, ierr := strconv.Atoi(s)
		if ierr != nil {
			return 0, badRequest("invalid_parameter", "wait=%q: give a duration such as 10s, or seconds", s)
		}
		d = time.Duration(n) * time.Second
	}
	if d < 0 || d > MaxWait {
		return 0, badRequest("invalid_parameter", "wait=%q: must be between 0 and %v", s, MaxWait)
	}
	return d, nil
}

func (a *API) readEvents(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	store := ps.ByName("store")
	req, err := parseReadRequest(r, store)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	evs, next, err := a.svc.Read(r.Context(), req)
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
	if err := hlog.ValidateStoreName(store); err != nil {
		return ReadRequest{}, err
	}
	q := r.URL.Query()
	req := ReadRequest{Store: store, Options: hlog.ReadOptions{Limit: DefaultLimit}}
	var err error
	if req.Consistency, err = consistency(r); err != nil {
		return req, err
	}
	if s := q.Get("after"); s != "" {
		if req.Options.After, err = strconv.ParseUint(s, 10, 64); err != nil {
			return req, badRequest("invalid_parameter", "after=%q: must be a sequence number (0 or more)", s)
		}
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxReadLimit {
			return req, badRequest("invalid_parameter", "limit=%q: must be 1-%d", s, MaxReadLimit)
		}
		req.Options.Limit = n
	}
	var pats []string
	for _, v := range q["type"] {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				pats = append(pats, p)
			}
		}
	}
	if req.Options.Types, err = hlog.ParsePatterns(pats); err != nil {
		return req, badRequest("invalid_parameter", "type: %v", err)
	}
	if req.Wait, err = parseWait(q.Get("wait")); err != nil {
		return req, err
	}
	return req, nil
}

func (a *API) getEvent(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	store := ps.ByName("store")
	if err := hlog.ValidateStoreName(store); err != nil {
		a.writeError(w, r, err)
		return
	}
	c, err := consistency(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	ev, err := a.svc.Get(r.Context(), store, ps.ByName("id"), c)
	if err != nil {
		a.fail(w, r, nil, err)
		return
	}
	writeJSONBytes(w, http.StatusOK, append(ev.AppendJSON(nil), '\n'))
}

// storeOut is the JSON form of a store summary.
type storeOut struct {
	Store     string        `json:"store"`
	FirstSeq  uint64        `json:"first_seq"`
	LastSeq   uint64        `json:"last_seq"`
	HeadHash  string        `json:"head_hash"`
	Events    uint64        `json:"events"`
	CreatedAt string        `json:"created_at,omitempty"`
	Retention *retentionOut `json:"retention,omitempty"`
	HeldBack  uint64        `json:"held_back,omitempty"`
	HeldBy    []string      `json:"held_by,omitempty"`
}

// retentionOut is a retention policy in JSON: max_age is a duration
// string.
type retentionOut struct {
	MaxAge    string `json:"max_age,omitempty"`
	MaxEvents uint64 `json:"max_events,omitempty"`
}

func toStoreOut(si hlog.StoreInfo) storeOut {
	o := storeOut{Store: si.Name, FirstSeq: si.FirstSeq, LastSeq: si.LastSeq, HeadHash: si.HeadHash, Events: si.Events,
		HeldBack: si.HeldBack}
	if si.HeldBy != "" {
		o.HeldBy = strings.Split(si.HeldBy, ",")
	}
	if si.CreatedAt > 0 {
		o.CreatedAt = time.Unix(0, si.CreatedAt).UTC().Format(time.RFC3339Nano)
	}
	if si.Retention != nil && !si.Retention.IsZero() {
		o.Retention = &retentionOut{MaxEvents: si.Retention.MaxEvents}
		if si.Retention.MaxAge > 0 {
			o.Retention.MaxAge = formatDuration(si.Retention.MaxAge)
		}
	}
	return o
}

func (a *API) putStore(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	store := ps.ByName("store")
	if err := hlog.ValidateStoreName(store); err != nil {
		a.writeError(w, r, err)
		return
	}
	body, err := readBody(w, r, maxSmallBody)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var in struct {
		Retention *struct {
			MaxAge    *string `json:"max_age"`
			MaxEvents *uint64 `json:"max_events"`
		} `json:"retention"`
	}
	if err := decodeStrict(body, &in); err != nil {
		a.writeError(w, r, err)
		return
	}
	if in.Retention == nil {
		a.writeError(w, r, badRequest("invalid_retention", "send {\"retention\":{\"max_age\":\"720h\",\"max_events\":N}} ({} of retention: the server default)"))
		return
	}
	var ret hlog.Retention
	if in.Retention.MaxAge != nil {
		d, err := time.ParseDuration(*in.Retention.MaxAge)
		if err != nil || d < time.Minute {
			a.writeError(w, r, badRequest("invalid_retention", "max_age=%q: a duration of at least 1m, such as \"720h\"", *in.Retention.MaxAge))
			return
		}
		ret.MaxAge = d
	}
	if in.Retention.MaxEvents != nil {
		if *in.Retention.MaxEvents == 0 {
			a.writeError(w, r, badRequest("invalid_retention", "max_events must be 1 or more (leave it out for no limit)"))
			return
		}
		ret.MaxEvents = *in.Retention.MaxEvents
	}
	if err := a.svc.SetRetention(r.Context(), store, ret); err != nil {
		a.fail(w, r, body, err)
		return
	}
	out := storeOut{Store: store}
	if !ret.IsZero() {
		out.Retention = &retentionOut{MaxEvents: ret.MaxEvents}
		if ret.MaxAge > 0 {
			out.Retention.MaxAge = formatDuration(ret.MaxAge)
		}
	}
	a.writeJSON(w, r, http.StatusOK, map[string]any{"store": store, "retention": out.Retention})
}

func (a *API) getStore(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	store := ps.ByName("store")
	if err := hlog.ValidateStoreName(store); err != nil {
		a.writeError(w, r, err)
		return
	}
	c, err := consistency(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	si, err := a.svc.Store(r.Context(), store, c)
	if err != nil {
		a.fail(w, r, nil, err)
		return
	}
	a.writeJSON(w, r, http.StatusOK, toStoreOut(si))
}

func (a *API) listStores(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	c, err := consistency(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	list, err := a.svc.Stores(r.Context(), c)
	if err != nil {
		a.fail(w, r, nil, err)
		return
	}
	out := struct {
		Stores []storeOut `json:"stores"`
	}{Stores: make([]storeOut, 0, len(list))}
	for _, si := range list {
		out.Stores = append(out.Stores, toStoreOut(si))
	}
	a.writeJSON(w, r, http.StatusOK, out)
}
