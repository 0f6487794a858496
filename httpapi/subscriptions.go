package httpapi

import (
	"fmt"
	"net/http"
	"time"

	"github.com/herald-io/herald/api"
	hlog "github.com/herald-io/herald/log"
	"github.com/julienschmidt/httprouter"
)

func invalidSub(format string, args ...any) error {
	return reqErr(api.CodeInvalidSubscription, format, args...)
}

func subDuration(field, s string) (time.Duration, error) {
	return parseDuration(api.CodeInvalidSubscription, field, s)
}

// toPatch turns the fields a client sent into a SubPatch, parsing the
// durations; whether the values make sense is the service's to decide.
func toPatch(in *api.SubscriptionPatch) (hlog.SubPatch, error) {
	p := hlog.SubPatch{URL: in.URL, Types: in.Types, Description: in.Description, Ordered: in.Ordered,
		MaxInFlight: in.MaxInFlight, RateLimit: in.RateLimit, Headers: in.Headers, SensitiveHeaders: in.SensitiveHeaders}
	if in.Timeout != nil {
		d, err := subDuration("timeout", *in.Timeout)
		if err != nil {
			return p, err
		}
		p.Timeout = &d
	}
	if in.DisableAfter != nil {
		d, err := subDuration("disable_after", *in.DisableAfter)
		if err != nil {
			return p, err
		}
		p.DisableAfter = &d
	}
	if in.RetrySchedule != nil {
		if len(*in.RetrySchedule) > hlog.MaxRetrySchedule {
			return p, invalidSub("retry_schedule: at most %d delays", hlog.MaxRetrySchedule)
		}
		ds := make([]time.Duration, len(*in.RetrySchedule))
		for i, s := range *in.RetrySchedule {
			d, err := subDuration(fmt.Sprintf("retry_schedule[%d]", i), s)
			if err != nil {
				return p, err
			}
			ds[i] = d
		}
		p.RetrySchedule = &ds
	}
	if in.Enabled != nil {
		st := hlog.SubPaused
		if *in.Enabled {
			st = hlog.SubActive
		}
		p.Status = &st
	}
	return p, nil
}

func (a *API) createSubscription(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	body, err := readBody(w, r, api.MaxSmallBodyBytes)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var in api.SubscriptionCreate
	if err := decodeStrict(body, &in, api.CodeInvalidSubscription); err != nil {
		a.writeError(w, r, err)
		return
	}
	if in.URL == nil {
		a.writeError(w, r, invalidSub("missing \"url\""))
		return
	}
	p, err := toPatch(&in.SubscriptionPatch)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	req := CreateSubscriptionRequest{Store: ps.ByName("store"), Patch: p, FromSeq: in.FromSeq}
	if in.Secret != nil {
		req.Secret = *in.Secret // "" is generated, as when absent
	}
	out, err := a.svc.Subscriptions.CreateSubscription(r.Context(), req)
	if err != nil {
		a.fail(w, r, body, err)
		return
	}
	w.Header().Set("Location", "/v1/stores/"+out.Store+"/subscriptions/"+out.ID)
	a.writeJSON(w, r, http.StatusCreated, toSubscription(&out, true))
}

func (a *API) listSubscriptions(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	c, err := consistency(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	subs, err := a.svc.Subscriptions.ListSubscriptions(r.Context(), ps.ByName("store"), c)
	if err != nil {
		a.fail(w, r, nil, err)
		return
	}
	out := api.SubscriptionList{Subscriptions: make([]api.Subscription, len(subs))}
	for i := range subs {
		out.Subscriptions[i] = toSubscription(&subs[i], false)
		if out.Subscriptions[i].Health, err = a.health(&subs[i]); err != nil {
			a.fail(w, r, nil, err)
			return
		}
	}
	a.writeJSON(w, r, http.StatusOK, out)
}

func (a *API) getSubscription(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	c, err := consistency(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	sub, err := a.svc.Subscriptions.GetSubscription(r.Context(), ps.ByName("store"), ps.ByName("id"), c)
	if err != nil {
		a.fail(w, r, nil, err)
		return
	}
	out := toSubscription(&sub, false)
	if out.Health, err = a.health(&sub); err != nil {
		a.fail(w, r, nil, err)
		return
	}
	a.writeJSON(w, r, http.StatusOK, out)
}

func (a *API) patchSubscription(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	body, err := readBody(w, r, api.MaxSmallBodyBytes)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var in api.SubscriptionCreate // to name the create-only fields if they come
	if err := decodeStrict(body, &in, api.CodeInvalidSubscription); err != nil {
		a.writeError(w, r, err)
		return
	}
	if in.Secret != nil || in.FromSeq != nil {
		a.writeError(w, r, invalidSub("secret and from_seq can only be set on create (rotate the secret with POST .../secret/rotate, replay with POST .../replay)"))
		return
	}
	p, err := toPatch(&in.SubscriptionPatch)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if p == (hlog.SubPatch{}) {
		a.writeError(w, r, invalidSub("empty patch: send at least one field"))
		return
	}
	a.updateSub(w, r, ps, body, p)
}

func (a *API) updateSub(w http.ResponseWriter, r *http.Request, ps httprouter.Params, body []byte, p hlog.SubPatch) {
	sub, err := a.svc.Subscriptions.UpdateSubscription(r.Context(), ps.ByName("store"), ps.ByName("id"), p)
	if err != nil {
		a.fail(w, r, body, err)
		return
	}
	a.writeJSON(w, r, http.StatusOK, toSubscription(&sub, false))
}

func (a *API) setStatus(status hlog.SubStatus) httprouter.Handle {
	return func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
		a.updateSub(w, r, ps, nil, hlog.SubPatch{Status: &status})
	}
}

func (a *API) deleteSubscription(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	if err := a.svc.Subscriptions.DeleteSubscription(r.Context(), ps.ByName("store"), ps.ByName("id")); err != nil {
		a.fail(w, r, nil, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) rotateSecret(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	body, err := readBody(w, r, api.MaxSmallBodyBytes)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var in api.RotateSecret
	if err := decodeOptional(body, &in, api.CodeInvalidSubscription); err != nil {
		a.writeError(w, r, err)
		return
	}
	req := RotateRequest{Secret: in.Secret}
	if in.Grace != "" {
		g, err := subDuration("grace", in.Grace)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		req.Grace = &g
	}
	sub, err := a.svc.Subscriptions.RotateSecret(r.Context(), ps.ByName("store"), ps.ByName("id"), req)
	if err != nil {
		a.fail(w, r, body, err)
		return
	}
	a.writeJSON(w, r, http.StatusOK, toSubscription(&sub, true))
}

func (a *API) testSubscription(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	at, err := a.svc.Subscriptions.TestSubscription(r.Context(), ps.ByName("store"), ps.ByName("id"))
	if err != nil {
		a.fail(w, r, nil, err)
		return
	}
	a.writeJSON(w, r, http.StatusOK, toDelivery(&at))
}

// health is the subscription's health when the service reports it.
func (a *API) health(sub *hlog.Subscription) (*api.SubscriptionHealth, error) {
	hs, ok := a.svc.Subscriptions.(HealthService)
	if !ok {
		return nil, nil
	}
	h, err := hs.SubscriptionHealth(sub)
	if err != nil {
		return nil, err
	}
	out := &api.SubscriptionHealth{LagEvents: h.LagEvents, RetryPending: h.RetryPending}
	if !h.OldestPendingAt.IsZero() {
		out.OldestPendingAt = h.OldestPendingAt.UTC()
	}
	if h.LastAttempt != nil {
		d := toDelivery(h.LastAttempt)
		d.RequestHeaders, d.ResponseHeaders, d.ResponseBody = nil, nil, ""
		out.LastAttempt = &d
	}
	return out, nil
}

// toSubscription is a subscription as the API shows it. The secret appears
// only in the answers to create and rotate.
func toSubscription(s *hlog.Subscription, withSecret bool) api.Subscription {
	o := api.Subscription{
		ID: s.ID, Store: s.Store, URL: s.URL, Types: s.Types, Description: s.Description,
		Enabled: s.Status == hlog.SubActive, Ordered: s.Ordered, MaxInFlight: s.MaxInFlight, RateLimit: s.RateLimit,
		Timeout: formatDuration(s.Timeout), Headers: s.Headers, DisableAfter: formatDuration(s.DisableAfter),
		CreatedAt: utcTime(s.CreatedAt), UpdatedAt: utcTime(s.UpdatedAt), Status: api.SubscriptionStatus(s.Status),
		DisabledReason: s.DisabledReason, Cursor: s.Cursor, FailingSince: utcTime(s.FailingSince), BreakerOpen: s.BreakerOpen,
	}
	if o.Types == nil {
		o.Types = []string{}
	}
	if o.Headers == nil {
		o.Headers = map[string]string{}
	}
	if len(s.SensitiveHeaders) > 0 {
		// Shown as set, never as its value (which is sealed anyway).
		o.Headers = make(map[string]string, len(s.Headers))
		for k, v := range s.Headers {
			if s.IsSensitive(k) {
				v = ""
			}
			o.Headers[k] = v
		}
		o.SensitiveHeaders = s.SensitiveHeaders
	}
	o.RetrySchedule = make([]string, len(s.RetrySchedule))
	for i, d := range s.RetrySchedule {
		o.RetrySchedule[i] = formatDuration(d)
	}
	if withSecret && len(s.Secrets) > 0 {
		o.Secret = s.Secrets[0].Key
	}
	return o
}
