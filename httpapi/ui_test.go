package httpapi

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// get fetches path without the OpenAPI-checking transport: the
// dashboard's files are not API routes.
func uiGet(t *testing.T, srv *httptest.Server, path string) (*http.Response, string) {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	r, err := c.Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return r, string(b)
}

// TestUIServed: the dashboard's files need no key (they hold no data; the
// API calls they make do), come with a policy that allows only the page's
// own scripts and API, and a missing file is the API's JSON 404.
func TestUIServed(t *testing.T) {
	f := newFake(t)
	srv, _ := newAuthServer(t, f)
	r, body := uiGet(t, srv, "/")
	for _, p := range []string{"/", "/ui"} {
		if r, _ = uiGet(t, srv, p); r.StatusCode != http.StatusFound || r.Header.Get("Location") != UIPath {
			t.Fatalf("GET %s: %d %s", p, r.StatusCode, r.Header.Get("Location"))
		}
	}
	r, body = uiGet(t, srv, "/ui/")
	if r.StatusCode != 200 || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") || !strings.Contains(body, `src="app.js"`) {
		t.Fatalf("GET /ui/: %d %s %.200s", r.StatusCode, r.Header.Get("Content-Type"), body)
	}
	csp := r.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if r.Header.Get("X-Content-Type-Options") != "nosniff" || r.Header.Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("headers: %v", r.Header)
	}
	r, body = uiGet(t, srv, "/ui/app.js")
	if r.StatusCode != 200 || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/javascript") || !strings.Contains(body, "import") {
		t.Fatalf("GET /ui/app.js: %d %s", r.StatusCode, r.Header.Get("Content-Type"))
	}
	r, body = uiGet(t, srv, "/ui/nope.js")
	if r.StatusCode != 404 || errCode(t, []byte(body)) != "not_found" {
		t.Fatalf("missing file: %d %s", r.StatusCode, body)
	}
	r, body = uiGet(t, srv, "/ui/../openapi.json")
	if r.StatusCode == 200 && strings.Contains(body, "openapi") {
		t.Fatalf("path escape served %s", body)
	}
	// The API behind it still wants a key.
	r, _ = uiGet(t, srv, "/v1/stores")
	if r.StatusCode != 401 {
		t.Fatalf("API without a key: %d", r.StatusCode)
	}
	// The cluster port's API has no dashboard.
	peer := httptest.NewServer(New(All(f), quiet(), WithPeer(func(*http.Request) (string, bool) { return "n2", true })))
	defer peer.Close()
	if r, _ := uiGet(t, peer, "/ui/"); r.StatusCode != 404 {
		t.Fatalf("the peer API serves the dashboard: %d", r.StatusCode)
	}
}

// TestUIFilesKeepTheirPromises checks the embedded files for what the
// policy and the design promise: no inline script or style (the CSP would
// block it), nothing loaded from another origin, and API text never
// inserted as HTML.
func TestUIFilesKeepTheirPromises(t *testing.T) {
	external := regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?(https?:)?//`)
	inline := regexp.MustCompile(`(?i)<script(?:\s[^>]*)?>\s*[^<\s]|\son[a-z]+\s*=|\sstyle\s*=`)
	markup := regexp.MustCompile(`innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function`)
	lines := 0
	err := fs.WalkDir(uiFiles, "ui", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(uiFiles, p)
		if err != nil {
			return err
		}
		s := string(b)
		lines += strings.Count(s, "\n")
		if m := external.FindString(s); m != "" {
			t.Errorf("%s loads from another origin: %s", p, m)
		}
		if strings.HasSuffix(p, ".html") {
			if m := inline.FindString(s); m != "" {
				t.Errorf("%s has inline script or style: %s", p, m)
			}
		}
		if strings.HasSuffix(p, ".js") {
			if m := markup.FindString(s); m != "" {
				t.Errorf("%s inserts markup: %s", p, m)
			}
			if strings.Contains(s, "localStorage.setItem('herald.key'") || strings.Contains(s, "console.log") {
				t.Errorf("%s keeps or logs what it should not", p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if lines > 2000 {
		t.Errorf("the dashboard is %d lines of HTML, CSS and JS; the design keeps it under ~2,000", lines)
	}
}
