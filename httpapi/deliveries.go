package httpapi

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	hlog "github.com/herald-io/herald/log"
	"github.com/julienschmidt/httprouter"
)

// attemptOut is one delivery attempt as the API shows it.
type attemptOut struct {
	ID              uint64            `json:"id,omitempty"`
	EventID         string            `json:"event_id"`
	Seq             uint64            `json:"seq"`
	Attempt         int               `json:"attempt"`
	Status          hlog.Outcome      `json:"status"`
	At              string            `json:"at"`
	DurationMS      float64           `json:"duration_ms"`
	Manual          bool              `json:"manual,omitempty"`
	RequestHeaders  map[string]string `json:"request_headers"`
	ResponseStatus  int               `json:"response_status,omitempty"`
	ResponseHeaders map[string]string `json:"response_headers"`
	ResponseBody    string            `json:"response_body"`
	Error           string            `json:"error,omitempty"`
	NextAttemptAt   string            `json:"next_attempt_at,omitempty"`
}

func pairs(ps [][2]string) map[string]string {
	m := make(map[string]string, len(ps))
	for _, p := range ps {
		m[p[0]] = p[1]
	}
	return m
}

func toAttemptOut(a *hlog.Attempt) attemptOut {
	return attemptOut{
		ID: a.ID, EventID: a.EventID, Seq: a.Seq, Attempt: a.Attempt, Status: a.Outcome, At: rfc3339(a.At),
		DurationMS: float64(a.Duration) / float64(time.Millisecond), Manual: a.Manual,
		RequestHeaders: pairs(a.RequestHeaders), ResponseStatus: a.Status, ResponseHeaders: pairs(a.ResponseHeaders),
		ResponseBody: a.ResponseBody, Error: a.Error, NextAttemptAt: rfc3339(a.NextAt),
	}
}

// pendingOut is an entry of the retry set.
type pendingOut struct {
	EventID       string `json:"event_id"`
	Seq           uint64 `json:"seq"`
	Status        string `json:"status"` // always "pending"
	Attempts      int    `json:"attempts"`
	NextAttemptAt string `json:"next_attempt_at"`
	LastError     string `json:"last_error,omitempty"`
	Manual        bool   `json:"manual,omitempty"`
}

func toPendingOut(e *hlog.RetryEntry) pendingOut {
	return pendingOut{EventID: e.EventID, Seq: e.Seq, Status: "pending", Attempts: e.Attempts,
		NextAttemptAt: rfc3339(e.NextAt), LastError: e.LastError, Manual: e.Manual}
}

func (a *API) listDeliveries(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	q := r.URL.Query()
	var dq DeliveriesQuery
	var err error
	if dq.Consistency, err = consistency(r); err != nil {
		a.writeError(w, r, err)
		return
	}
	switch st := DeliveryStatus(q.Get("status")); st {
	case DeliveryAll, DeliverySucceeded, DeliveryFailed, DeliveryDead, DeliveryPending:
		dq.Status = st
	default:
		a.writeError(w, r, badRequest("invalid_parameter", "status=%q: use succeeded, failed, dead or pending", string(st)))
		return
	}
	if s := q.Get("after"); s != "" {
		if dq.After, err = strconv.ParseUint(s, 10, 64); err != nil {
			a.writeError(w, r, badRequest("invalid_parameter", "after=%q: not a non-negative integer", s))
			return
		}
	}
	dq.Limit = DefaultLimit
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxReadLimit {
			a.writeError(w, r, badRequest("invalid_parameter", "limit=%q: must be 1-%d", s, MaxReadLimit))
			return
		}
		dq.Limit = n
	}
	page, err := a.svc.Deliveries(r.Context(), ps.ByName("store"), ps.ByName("id"), dq)
	if err != nil {
		a.fail(w, r, nil, err)
		return
	}
	items := make([]any, 0, len(page.Attempts)+len(page.Pending))
	for i := range page.Attempts {
		items = append(items, toAttemptOut(&page.Attempts[i]))
	}
	for i := range page.Pending {
		items = append(items, toPendingOut(&page.Pending[i]))
	}
	a.writeJSON(w, r, http.StatusOK, map[string]any{"deliveries": items, "next": page.Next})
}

func (a *API) eventDeliveries(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	c, err := consistency(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	as, err := a.svc.EventDeliveries(r.Context(), ps.ByName("store"), ps.ByName("id"), ps.ByName("event_id"), c)
	if err != nil {
		a.fail(w, r, nil, err)
		return
	}
	out := make([]attemptOut, len(as))
	for i := range as {
		out[i] = toAttemptOut(&as[i])
	}
	a.writeJSON(w, r, http.StatusOK, map[string]any{"event_id": ps.ByName("event_id"), "attempts": out})
}

func (a *API) redeliver(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	if err := hlog.ValidateStoreName(ps.ByName("store")); err != nil {
		a.writeError(w, r, err)
		return
	}
	e, err := a.svc.Redeliver(r.Context(), ps.ByName("store"), ps.ByName("id"), ps.ByName("event_id"))
	if err != nil {
		a.fail(w, r, nil, err)
		return
	}
	a.writeJSON(w, r, http.StatusAccepted, map[string]any{
		"subscription_id": ps.ByName("id"), "event_id": e.EventID, "seq": e.Seq, "status": "pending", "next_attempt_at": rfc3339(e.NextAt)})
}

func (a *API) replay(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	body, err := a.subBody(w, r, ps.ByName("store"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var in struct {
		FromSeq *uint64 `json:"from_seq"`
		Since   *string `json:"since"`
		Only    *string `json:"only"`
	}
	if err := decodeSubBody(body, &in); err != nil {
		a.writeError(w, r, err)
		return
	}
	var req ReplayRequest
	switch {
	case (in.FromSeq == nil) == (in.Since == nil):
		err = badRequest("invalid_replay", "give exactly one of \"from_seq\" and \"since\"")
	case in.FromSeq != nil && *in.FromSeq == 0:
		err = badRequest("invalid_replay", "from_seq must be 1 or more")
	case in.FromSeq != nil:
		req.FromSeq = *in.FromSeq
	default:
		t, perr := time.Parse(time.RFC3339Nano, strings.TrimSpace(*in.Since))
		if perr != nil {
			err = badRequest("invalid_replay", "since=%q: not an RFC 3339 time", *in.Since)
		}
		req.Since = t
	}
	if err == nil && in.Only != nil {
		if *in.Only != "dead" {
			err = badRequest("invalid_replay", "only=%q: the only filter is \"dead\"", *in.Only)
		}
		req.OnlyDead = true
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	res, err := a.svc.Replay(r.Context(), ps.ByName("store"), ps.ByName("id"), req)
	if err != nil {
		a.fail(w, r, body, err)
		return
	}
	a.writeJSON(w, r, http.StatusAccepted, res)
}
