package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	hlog "github.com/herald-io/herald/log"
	"github.com/julienschmidt/httprouter"
)

// Limits of the subscription API.
const (
	DefaultGrace = 24 * time.Hour
	MaxGrace     = 7 * 24 * time.Hour
)

// subIn is a subscription as a client sends it (create and PATCH).
// Durations are Go duration strings ("200ms", "5m", "2h").
type subIn struct {
	URL           *string            `json:"url"`
	Types         *[]string          `json:"types"`
	Description   *string            `json:"description"`
	Enabled       *bool              `json:"enabled"`
	Ordered       *bool              `json:"ordered"`
	MaxInFlight   *int               `json:"max_in_flight"`
	RateLimit     *float64           `json:"rate_limit"`
	Timeout       *string            `json:"timeout"`
	RetrySchedule *[]string          `json:"retry_schedule"`
	Headers       *map[string]string `json:"headers"`
	DisableAfter  *string            `json:"disable_after"`
	// Create only.
	Secret  *string `json:"secret"`
	FromSeq *uint64 `json:"from_seq"`
}

func invalidSub(format string, args ...any) error {
	return badRequest("invalid_subscription", format, args...)
}

// decodeSubBody decodes strictly, reporting field problems as
// invalid_subscription.
func decodeSubBody(body []byte, v any) error {
	err := decodeStrict(body, v)
	var re *requestError
	if errors.As(err, &re) && re.code == "invalid_event" {
		return invalidSub("%s", re.msg)
	}
	return err
}

func parseDur(field, s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, invalidSub("%s: %q is not a duration such as \"500ms\", \"5s\", \"2h\"", field, s)
	}
	return d, nil
}

// patch turns the input into a SubPatch; create=false refuses the
// create-only fields.
func (in *subIn) patch(create bool) (hlog.SubPatch, error) {
	var p hlog.SubPatch
	if !create && (in.Secret != nil || in.FromSeq != nil) {
		return p, invalidSub("secret and from_seq can only be set on create (rotate the secret with POST .../secret/rotate, replay with POST .../replay)")
	}
	p.URL, p.Types, p.Description, p.Ordered, p.MaxInFlight, p.RateLimit, p.Headers = in.URL, in.Types, in.Description, in.Ordered, in.MaxInFlight, in.RateLimit, in.Headers
	if in.Types != nil && len(*in.Types) > hlog.MaxTypesPerSub {
		return p, invalidSub("types: at most %d patterns", hlog.MaxTypesPerSub)
	}
	if in.Timeout != nil {
		d, err := parseDur("timeout", *in.Timeout)
		if err != nil {
			return p, err
		}
		p.Timeout = &d
	}
	if in.DisableAfter != nil {
		d, err := parseDur("disable_after", *in.DisableAfter)
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
			d, err := parseDur(fmt.Sprintf("retry_schedule[%d]", i), s)
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

// placeholderSecret stands in for the secret the service will generate,
// so a create can be validated whole before the service is called.
const placeholderSecret = "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="

func (a *API) createSubscription(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	store := ps.ByName("store")
	body, err := a.subBody(w, r, store)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var in subIn
	if err := decodeSubBody(body, &in); err != nil {
		a.writeError(w, r, err)
		return
	}
	if in.URL == nil {
		a.writeError(w, r, invalidSub("missing \"url\""))
		return
	}
	p, err := in.patch(true)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if in.Ordered != nil && *in.Ordered && in.MaxInFlight == nil {
		one := 1
		p.MaxInFlight = &one
	}
	sub := hlog.Subscription{Store: store}
	sub.ApplyDefaults()
	p.Apply(&sub)
	check := sub
	if in.Secret != nil {
		sub.Secrets = []hlog.Secret{{Key: *in.Secret}}
		check.Secrets = sub.Secrets
	} else {
		check.Secrets = []hlog.Secret{{Key: placeholderSecret}}
	}
	if err := check.Validate(); err != nil {
		a.writeError(w, r, err)
		return
	}
	req := CreateSubscriptionRequest{Sub: sub}
	if in.FromSeq != nil {
		if *in.FromSeq == 0 {
			a.writeError(w, r, invalidSub("from_seq must be 1 or more"))
			return
		}
		req.FromSeq = *in.FromSeq
	}
	out, err := a.svc.CreateSubscription(r.Context(), req)
	if err != nil {
		a.fail(w, r, body, err)
		return
	}
	w.Header().Set("Location", "/v1/stores/"+store+"/subscriptions/"+out.ID)
	a.writeJSON(w, r, http.StatusCreated, toSubOut(&out, true))
}

// subBody validates the store and reads a small JSON body (which may be
// empty when allowEmpty).
func (a *API) subBody(w http.ResponseWriter, r *http.Request, store string) ([]byte, error) {
	if err := hlog.ValidateStoreName(store); err != nil {
		return nil, err
	}
	return readBody(w, r, maxSmallBody)
}

func (a *API) listSubscriptions(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	c, err := consistency(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	subs, err := a.svc.ListSubscriptions(r.Context(), ps.ByName("store"), c)
	if err != nil {
		a.fail(w, r, nil, err)
		return
	}
	out := struct {
		Subscriptions []subOut `json:"subscriptions"`
	}{Subscriptions: make([]subOut, len(subs))}
	for i := range subs {
		out.Subscriptions[i] = toSubOut(&subs[i], false)
	}
	a.writeJSON(w, r, http.StatusOK, out)
}

func (a *API) getSubscription(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	c, err := consistency(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	sub, err := a.svc.GetSubscription(r.Context(), ps.ByName("store"), ps.ByName("id"), c)
	if err != nil {
		a.fail(w, r, nil, err)
		return
	}
	a.writeJSON(w, r, http.StatusOK, toSubOut(&sub, false))
}

func (a *API) patchSubscription(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	body, err := a.subBody(w, r, ps.ByName("store"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var in subIn
	if err := decodeSubBody(body, &in); err != nil {
		a.writeError(w, r, err)
		return
	}
	p, err := in.patch(false)
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
	sub, err := a.svc.UpdateSubscription(r.Context(), ps.ByName("store"), ps.ByName("id"), p)
	if err != nil {
		a.fail(w, r, body, err)
		return
	}
	a.writeJSON(w, r, http.StatusOK, toSubOut(&sub, false))
}

func (a *API) setStatus(status hlog.SubStatus) httprouter.Handle {
	return func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
		if err := hlog.ValidateStoreName(ps.ByName("store")); err != nil {
			a.writeError(w, r, err)
			return
		}
		a.updateSub(w, r, ps, nil, hlog.SubPatch{Status: &status})
	}
}

func (a *API) deleteSubscription(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	err := a.svc.DeleteSubscription(r.Context(), ps.ByName("store"), ps.ByName("id"))
	if err != nil {
		a.fail(w, r, nil, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) rotateSecret(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	body, err := a.subBody(w, r, ps.ByName("store"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var in struct {
		Secret string  `json:"secret"`
		Grace  *string `json:"grace"`
	}
	if len(strings.TrimSpace(string(body))) > 0 {
		if err := decodeSubBody(body, &in); err != nil {
			a.writeError(w, r, err)
			return
		}
	}
	grace := DefaultGrace
	if in.Grace != nil {
		if grace, err = parseDur("grace", *in.Grace); err != nil {
			a.writeError(w, r, err)
			return
		}
		if grace < 0 || grace > MaxGrace {
			a.writeError(w, r, invalidSub("grace must be 0-%s", formatDuration(MaxGrace)))
			return
		}
	}
	if in.Secret != "" {
		if err := hlog.ValidateSecret(in.Secret); err != nil {
			a.writeError(w, r, err)
			return
		}
	}
	sub, err := a.svc.RotateSecret(r.Context(), ps.ByName("store"), ps.ByName("id"), in.Secret, grace)
	if err != nil {
		a.fail(w, r, body, err)
		return
	}
	a.writeJSON(w, r, http.StatusOK, toSubOut(&sub, true))
}

func (a *API) testSubscription(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	at, err := a.svc.TestSubscription(r.Context(), ps.ByName("store"), ps.ByName("id"))
	if err != nil {
		a.fail(w, r, nil, err)
		return
	}
	a.writeJSON(w, r, http.StatusOK, toAttemptOut(&at))
}

// subOut is a subscription as the API shows it. The secret appears only in
// the answers to create and rotate.
type subOut struct {
	ID             string            `json:"id"`
	Store          string            `json:"store"`
	URL            string            `json:"url"`
	Types          []string          `json:"types"`
	Description    string            `json:"description"`
	Enabled        bool              `json:"enabled"`
	Ordered        bool              `json:"ordered"`
	MaxInFlight    int               `json:"max_in_flight"`
	RateLimit      float64           `json:"rate_limit"`
	Timeout        string            `json:"timeout"`
	RetrySchedule  []string          `json:"retry_schedule"`
	Headers        map[string]string `json:"headers"`
	DisableAfter   string            `json:"disable_after"`
	CreatedAt      string            `json:"created_at"`
	UpdatedAt      string            `json:"updated_at"`
	Status         hlog.SubStatus    `json:"status"`
	DisabledReason string            `json:"disabled_reason,omitempty"`
	Cursor         uint64            `json:"cursor"`
	FailingSince   string            `json:"failing_since,omitempty"`
	BreakerOpen    bool              `json:"breaker_open"`
	Secret         string            `json:"secret,omitempty"`
}

func rfc3339(ns int64) string {
	if ns == 0 {
		return ""
	}
	return time.Unix(0, ns).UTC().Format(time.RFC3339Nano)
}

func toSubOut(s *hlog.Subscription, withSecret bool) subOut {
	o := subOut{
		ID: s.ID, Store: s.Store, URL: s.URL, Types: s.Types, Description: s.Description,
		Enabled: s.Status == hlog.SubActive, Ordered: s.Ordered, MaxInFlight: s.MaxInFlight, RateLimit: s.RateLimit,
		Timeout: formatDuration(s.Timeout), Headers: s.Headers, DisableAfter: formatDuration(s.DisableAfter),
		CreatedAt: rfc3339(s.CreatedAt), UpdatedAt: rfc3339(s.UpdatedAt), Status: s.Status, DisabledReason: s.DisabledReason,
		Cursor: s.Cursor, FailingSince: rfc3339(s.FailingSince), BreakerOpen: s.BreakerOpen,
	}
	if o.Types == nil {
		o.Types = []string{}
	}
	if o.Headers == nil {
		o.Headers = map[string]string{}
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
