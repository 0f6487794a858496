package httpapi

import (
	"net/http"
	"strings"
	"time"

	"github.com/herald-io/herald/api"
	hlog "github.com/herald-io/herald/log"
	"github.com/julienschmidt/httprouter"
)

func pairs(ps [][2]string) map[string]string {
	if len(ps) == 0 {
		return nil
	}
	m := make(map[string]string, len(ps))
	for _, p := range ps {
		m[p[0]] = p[1]
	}
	return m
}

// toDelivery is one attempt as the API shows it.
func toDelivery(a *hlog.Attempt) api.Delivery {
	return api.Delivery{
		ID: a.ID, EventID: a.EventID, Seq: a.Seq, Attempt: a.Attempt, Status: api.DeliveryStatus(a.Outcome), At: utcTime(a.At),
		DurationMS: float64(a.Duration) / float64(time.Millisecond), Manual: a.Manual,
		RequestHeaders: pairs(a.RequestHeaders), ResponseStatus: a.Status, ResponseHeaders: pairs(a.ResponseHeaders),
		ResponseBody: a.ResponseBody, Error: a.Error, NextAttemptAt: utcTime(a.NextAt),
	}
}

// toPending is an entry of the retry set.
func toPending(e *hlog.RetryEntry) api.Delivery {
	return api.Delivery{EventID: e.EventID, Seq: e.Seq, Status: api.DeliveryPending, Attempts: e.Attempts,
		NextAttemptAt: utcTime(e.NextAt), LastError: e.LastError, Manual: e.Manual}
}

func (a *API) listDeliveries(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	var dq DeliveriesQuery
	var err error
	if dq.Consistency, err = consistency(r); err != nil {
		a.writeError(w, r, err)
		return
	}
	switch st := api.DeliveryStatus(r.URL.Query().Get("status")); st {
	case "", api.DeliverySucceeded, api.DeliveryFailed, api.DeliveryDead, api.DeliveryPending:
		dq.Status = st
	default:
		a.writeError(w, r, reqErr(api.CodeInvalidParameter, "status=%q: use succeeded, failed, dead or pending", string(st)))
		return
	}
	if dq.After, err = parseUintParam(r, "after"); err != nil {
		a.writeError(w, r, err)
		return
	}
	if dq.Limit, err = parseLimit(r); err != nil {
		a.writeError(w, r, err)
		return
	}
	page, err := a.svc.Subscriptions.Deliveries(r.Context(), ps.ByName("store"), ps.ByName("id"), dq)
	if err != nil {
		a.fail(w, r, nil, err)
		return
	}
	out := api.DeliveryPage{Deliveries: make([]api.Delivery, 0, len(page.Attempts)+len(page.Pending)), Next: page.Next}
	for i := range page.Attempts {
		out.Deliveries = append(out.Deliveries, toDelivery(&page.Attempts[i]))
	}
	for i := range page.Pending {
		out.Deliveries = append(out.Deliveries, toPending(&page.Pending[i]))
	}
	a.writeJSON(w, r, http.StatusOK, out)
}

func (a *API) eventDeliveries(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	c, err := consistency(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	as, err := a.svc.Subscriptions.EventDeliveries(r.Context(), ps.ByName("store"), ps.ByName("id"), ps.ByName("event_id"), c)
	if err != nil {
		a.fail(w, r, nil, err)
		return
	}
	out := api.EventDeliveries{EventID: ps.ByName("event_id"), Attempts: make([]api.Delivery, len(as))}
	for i := range as {
		out.Attempts[i] = toDelivery(&as[i])
	}
	a.writeJSON(w, r, http.StatusOK, out)
}

func (a *API) redeliver(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	e, err := a.svc.Subscriptions.Redeliver(r.Context(), ps.ByName("store"), ps.ByName("id"), ps.ByName("event_id"))
	if err != nil {
		a.fail(w, r, nil, err)
		return
	}
	a.writeJSON(w, r, http.StatusAccepted, api.Redelivery{SubscriptionID: ps.ByName("id"), EventID: e.EventID, Seq: e.Seq,
		Status: api.DeliveryPending, NextAttemptAt: utcTime(e.NextAt)})
}

func (a *API) replay(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	body, err := readBody(w, r, api.MaxSmallBodyBytes)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var in api.Replay
	if err := decodeStrict(body, &in, api.CodeInvalidReplay); err != nil {
		a.writeError(w, r, err)
		return
	}
	var req ReplayRequest
	switch {
	case (in.FromSeq == 0) == (in.Since == ""):
		err = reqErr(api.CodeInvalidReplay, "give exactly one of \"from_seq\" (1 or more) and \"since\"")
	case in.FromSeq > 0:
		req.FromSeq = in.FromSeq
	default:
		t, perr := time.Parse(time.RFC3339Nano, strings.TrimSpace(in.Since))
		if perr != nil {
			err = reqErr(api.CodeInvalidReplay, "since=%q: not an RFC 3339 time", in.Since)
		}
		req.Since = t
	}
	if err == nil && in.Only != "" {
		if in.Only != "dead" {
			err = reqErr(api.CodeInvalidReplay, "only=%q: the only filter is \"dead\"", in.Only)
		}
		req.OnlyDead = true
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	res, err := a.svc.Subscriptions.Replay(r.Context(), ps.ByName("store"), ps.ByName("id"), req)
	if err != nil {
		a.fail(w, r, body, err)
		return
	}
	a.writeJSON(w, r, http.StatusAccepted, res)
}
