package httpapi

import (
	"net/http"
	"strings"

	"github.com/herald-io/herald/api"
	hlog "github.com/herald-io/herald/log"
	"github.com/julienschmidt/httprouter"
)

func toRetention(r *hlog.Retention) *api.Retention {
	if r == nil || r.IsZero() {
		return nil
	}
	out := &api.Retention{MaxEvents: r.MaxEvents}
	if r.MaxAge > 0 {
		out.MaxAge = formatDuration(r.MaxAge)
	}
	return out
}

func toStore(si hlog.StoreInfo) api.Store {
	o := api.Store{Store: si.Name, FirstSeq: si.FirstSeq, LastSeq: si.LastSeq, HeadHash: si.HeadHash, Events: si.Events,
		CreatedAt: utcTime(si.CreatedAt), Retention: toRetention(si.Retention), HeldBack: si.HeldBack}
	if si.HeldBy != "" {
		o.HeldBy = strings.Split(si.HeldBy, ",")
	}
	return o
}

func (a *API) putStore(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	store := ps.ByName("store")
	body, err := readBody(w, r, api.MaxSmallBodyBytes)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var in api.SetRetention
	if err := decodeStrict(body, &in, api.CodeInvalidRetention); err != nil {
		a.writeError(w, r, err)
		return
	}
	if in.Retention == nil {
		a.writeError(w, r, reqErr(api.CodeInvalidRetention, "send {\"retention\":{\"max_age\":\"720h\",\"max_events\":N}} ({} of retention: the server default)"))
		return
	}
	var ret hlog.Retention
	if in.Retention.MaxAge != "" {
		if ret.MaxAge, err = parseDuration(api.CodeInvalidRetention, "max_age", in.Retention.MaxAge); err != nil {
			a.writeError(w, r, err)
			return
		}
	}
	ret.MaxEvents = in.Retention.MaxEvents
	if err := a.svc.Stores.SetRetention(r.Context(), store, ret); err != nil {
		a.fail(w, r, body, err)
		return
	}
	a.writeJSON(w, r, http.StatusOK, api.StoreRetention{Store: store, Retention: toRetention(&ret)})
}

func (a *API) getStore(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	c, err := consistency(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	si, err := a.svc.Stores.Store(r.Context(), ps.ByName("store"), c)
	if err != nil {
		a.fail(w, r, nil, err)
		return
	}
	a.writeJSON(w, r, http.StatusOK, toStore(si))
}

// getTypes answers GET /v1/stores/{store}/types: what the store's type
// index holds, as GET /v1/stores/{store} answers for a store (404 before
// its first event, the same consistency levels).
func (a *API) getTypes(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	c, err := consistency(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	store := ps.ByName("store")
	st, err := a.svc.Stores.Types(r.Context(), store, c)
	if err != nil {
		a.fail(w, r, nil, err)
		return
	}
	out := api.StoreTypes{Store: store, Types: make([]api.EventType, len(st.Types)), Truncated: st.Truncated}
	for i, ti := range st.Types {
		out.Types[i] = api.EventType{Type: ti.Type, Count: ti.Count, LastSeenAt: utcTime(ti.LastSeen), LastSeq: ti.LastSeq}
	}
	a.writeJSON(w, r, http.StatusOK, out)
}

func (a *API) listStores(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	c, err := consistency(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	list, err := a.svc.Stores.Stores(r.Context(), c)
	if err != nil {
		a.fail(w, r, nil, err)
		return
	}
	out := api.StoreList{Stores: make([]api.Store, 0, len(list))}
	id := IdentityFrom(r.Context())
	for _, si := range list {
		if id != nil && !id.Allows(api.ActionRead, si.Name) {
			continue // a key sees only the stores it may read
		}
		out.Stores = append(out.Stores, toStore(si))
	}
	a.writeJSON(w, r, http.StatusOK, out)
}
