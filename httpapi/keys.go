package httpapi

import (
	"net/http"

	"github.com/herald-io/herald/api"
	"github.com/julienschmidt/httprouter"
)

func (a *API) createKey(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	body, err := readBody(w, r, api.MaxSmallBodyBytes)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var req api.KeyRequest
	if err := decodeStrict(body, &req, api.CodeInvalidKey); err != nil {
		a.writeError(w, r, err)
		return
	}
	k, err := a.svc.Keys.CreateKey(r.Context(), req)
	if err != nil {
		a.fail(w, r, body, err)
		return
	}
	w.Header().Set("Location", "/v1/keys/"+k.ID)
	w.Header().Set("Cache-Control", "no-store") // the answer holds the key
	a.writeJSON(w, r, http.StatusCreated, k)
}

func (a *API) listKeys(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	keys, err := a.svc.Keys.Keys(r.Context())
	if err != nil {
		a.fail(w, r, nil, err)
		return
	}
	if keys == nil {
		keys = []api.Key{}
	}
	a.writeJSON(w, r, http.StatusOK, api.KeyList{Keys: keys})
}

func (a *API) getKey(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	k, err := a.svc.Keys.Key(r.Context(), ps.ByName("id"))
	if err != nil {
		a.fail(w, r, nil, err)
		return
	}
	a.writeJSON(w, r, http.StatusOK, k)
}

func (a *API) revokeKey(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	if err := a.svc.Keys.RevokeKey(r.Context(), ps.ByName("id")); err != nil {
		a.fail(w, r, nil, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) rotateSecretsKey(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	res, err := a.svc.Keys.RotateSecretsKey(r.Context())
	if err != nil {
		a.fail(w, r, nil, err)
		return
	}
	a.writeJSON(w, r, http.StatusOK, res)
}

func (a *API) hello(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	a.writeJSON(w, r, http.StatusOK, a.svc.Join.Hello())
}

func (a *API) createToken(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	body, err := readBody(w, r, api.MaxSmallBodyBytes)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var req api.JoinTokenRequest
	if len(body) > 0 {
		if err := decodeStrict(body, &req, api.CodeInvalidToken); err != nil {
			a.writeError(w, r, err)
			return
		}
	}
	ttl := api.DefaultTokenTTL
	if req.TTL != "" {
		if ttl, err = parseDuration(api.CodeInvalidToken, "ttl", req.TTL); err != nil {
			a.writeError(w, r, err)
			return
		}
	}
	if ttl <= 0 || ttl > api.MaxTokenTTL {
		a.writeError(w, r, reqErr(api.CodeInvalidToken, "ttl must be more than 0 and at most %s", formatDuration(api.MaxTokenTTL)))
		return
	}
	tok, err := a.svc.Join.CreateJoinToken(r.Context(), ttl)
	if err != nil {
		a.fail(w, r, body, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	a.writeJSON(w, r, http.StatusCreated, tok)
}

// enroll is served on the cluster port only: a joining node, which has no
// certificate yet, trades a join token for one.
func (a *API) enroll(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	body, err := readBody(w, r, api.MaxSmallBodyBytes)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var req api.EnrollRequest
	if err := decodeStrict(body, &req, api.CodeInvalidToken); err != nil {
		a.writeError(w, r, err)
		return
	}
	res, err := a.svc.Join.Enroll(r.Context(), req)
	if err != nil {
		a.fail(w, r, body, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	a.writeJSON(w, r, http.StatusOK, res)
}
