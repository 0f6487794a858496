package httpapi

import (
	"embed"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"

	"github.com/herald-io/herald/api"
	"github.com/julienschmidt/httprouter"
)

// The dashboard: static files, embedded in the binary, that call the
// public JSON API from the browser with the key the user signs in with.
// Serving them needs no key (they hold no data); everything they show
// comes from API calls that do.
//
//go:embed ui
var uiFiles embed.FS

// UIPath is where the dashboard is served.
const UIPath = "/ui/"

// uiCSP allows the page its own scripts, styles and API only: no inline
// script, no other origin, no framing.
const uiCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

func (a *API) registerUI() {
	toUI := func(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
		http.Redirect(w, r, UIPath, http.StatusFound)
	}
	a.router.Handle(http.MethodGet, "/", toUI)
	a.router.Handle(http.MethodGet, "/ui", toUI)
	a.router.Handle(http.MethodGet, "/ui/*file", a.uiFile)
}

func (a *API) uiFile(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	if i := infoOf(r.Context()); i != nil {
		i.route = "/ui/*"
	}
	name := strings.TrimPrefix(path.Clean(ps.ByName("file")), "/")
	if name == "" || name == "." {
		name = "index.html"
	}
	b, err := fs.ReadFile(uiFiles, "ui/"+name)
	if err != nil {
		writeErrorBody(w, api.CodeNotFound, fmt.Sprintf("no dashboard file %.100q", name))
		return
	}
	h := w.Header()
	ct := mime.TypeByExtension(path.Ext(name))
	if ct == "" {
		ct = "application/octet-stream"
	}
	h.Set("Content-Type", ct)
	h.Set("Content-Security-Policy", uiCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	w.Write(b)
}
