package httpapi

import (
	"net/http"

	"github.com/herald-io/herald/api"
	"github.com/julienschmidt/httprouter"
)

// self answers who the request runs as: any valid key may ask about
// itself, never about another.
func (a *API) self(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	out := api.Self{Grants: []api.Grant{}}
	id := IdentityFrom(r.Context())
	switch {
	case id == nil || id.Anonymous:
		out.Name, out.Admin, out.Anonymous = "anonymous", true, true
	default:
		out.KeyID, out.Name, out.Admin = id.KeyID, id.Name, id.Admin
		if id.Node != "" && id.KeyID == "" {
			out.Name, out.Admin = id.Node, true
		}
		if len(id.Grants) > 0 {
			out.Grants = id.Grants
		}
	}
	a.writeJSON(w, r, http.StatusOK, out)
}
