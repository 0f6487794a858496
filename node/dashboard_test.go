package node

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/herald-io/herald/api"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// The dashboard in a real browser. Chromium comes from Debian's package
// (.ci/run installs it and sets HERALD_REQUIRE_BROWSER, so CI cannot skip
// this); HERALD_SCREENSHOTS=DIR keeps a screenshot of each page there
// (docs/img holds the ones docs/dashboard.md shows).

func browserPath(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("HERALD_REQUIRE_BROWSER") != "" {
		t.Fatal("HERALD_REQUIRE_BROWSER is set but no chromium is installed (apt-get install -y chromium)")
	}
	t.Skip("no chromium: apt-get install -y chromium")
	return ""
}

// hookReceiver answers deliveries with what the test sets and verifies
// every signature with the official Standard Webhooks library once the
// test knows the secret the page showed.
type hookReceiver struct {
	mu       sync.Mutex
	status   int
	body     string
	secret   string
	got      map[string]int // event id -> deliveries
	verified int
	bad      []string
	srv      *httptest.Server
}

func newHookReceiver(t *testing.T) *hookReceiver {
	r := &hookReceiver{status: 200, body: `{"ok":true,"receiver":"test"}`, got: map[string]int{}}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		r.got[req.Header.Get("webhook-id")]++
		if r.secret != "" {
			wh, err := standardwebhooks.NewWebhook(r.secret)
			if err == nil {
				err = wh.Verify(b, req.Header)
			}
			if err != nil {
				r.bad = append(r.bad, err.Error())
			} else {
				r.verified++
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(r.status)
		io.WriteString(w, r.body)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *hookReceiver) set(status int, body string) {
	r.mu.Lock()
	r.status, r.body = status, body
	r.mu.Unlock()
}

func (r *hookReceiver) count(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.got[id]
}

// page drives one browser tab.
type page struct {
	t    *testing.T
	ctx  context.Context
	base string
	shot string // directory for screenshots; "" none
}

func (p *page) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatalf("%s: %v\npage text:\n%s", what, err, p.text())
	}
}

func (p *page) text() string {
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	s, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	return s
}

// eval runs a JS expression and returns its value.
func eval[T any](p *page, js string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		p.t.Fatalf("eval %s: %v", js, err)
	}
	return v
}

// waitJS polls a JS condition until it is true (within 30 s).
func (p *page) waitJS(what, js string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](js, chromedp.WithPollingInterval(100*time.Millisecond))); err != nil {
		p.t.Fatalf("waiting for %s (%s): %v\npage text:\n%s", what, js, err, p.text())
	}
}

// waitText waits until the page shows s.
func (p *page) waitText(s string) {
	p.t.Helper()
	p.waitJS(fmt.Sprintf("text %q", s), fmt.Sprintf(`document.body.innerText.includes(%q)`, s))
}

func (p *page) open(hash string) {
	p.t.Helper()
	p.run("open "+hash, chromedp.Navigate(p.base+"/ui/"+hash))
}

// control finds the form control labelled label.
func control(label string) string {
	return fmt.Sprintf(`//*[@id=//label[normalize-space()=%q]/@for]`, label)
}

func button(name string) string {
	return fmt.Sprintf(`//button[normalize-space()=%q] | //a[normalize-space()=%q]`, name, name)
}

func (p *page) fill(label, value string) {
	p.t.Helper()
	// Empty it first (as a user selecting all would), then type.
	eval[bool](p, fmt.Sprintf(`(() => { const l = [...document.querySelectorAll("label")].find(l => l.textContent.trim() === %q); const el = document.getElementById(l.htmlFor); el.value = ""; return true })()`, label))
	p.run("fill "+label, chromedp.SendKeys(control(label), value))
}

func (p *page) click(sel string) {
	p.t.Helper()
	p.run("click "+sel, chromedp.WaitVisible(sel), chromedp.Click(sel))
}

func (p *page) screenshot(name string) {
	p.t.Helper()
	if p.shot == "" {
		return
	}
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	b, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		p.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p.shot, name+".png"), b, 0o644); err != nil {
		p.t.Fatal(err)
	}
}

func (p *page) noHorizontalScroll(what string) {
	p.t.Helper()
	widths := eval[[]int](p, `[document.documentElement.scrollWidth, window.innerWidth]`)
	if len(widths) != 2 || widths[0] > widths[1] {
		p.t.Fatalf("%s scrolls sideways at %d px: content %v", what, widths[1], widths)
	}
}

func TestDashboard(t *testing.T) {
	chrome := browserPath(t)
	cfg := fastConfig("n1", filepath.Join(t.TempDir(), "n1"))
	cfg.Bootstrap, cfg.NoAuth = true, false
	n := mustStart(t, cfg)
	waitFor(t, 10*time.Second, "leader", n.IsLeader)
	var admin string
	waitFor(t, 10*time.Second, "the admin key", func() bool {
		b, err := os.ReadFile(filepath.Join(cfg.DataDir, AdminKeyFile))
		admin = strings.TrimSpace(string(b))
		return err == nil && admin != ""
	})
	c := keyClient(t, n.HTTPAddr(), admin)
	ctx := context.Background()
	if _, err := c.Publish(ctx, "shop-1", api.NewEvent{Type: "order.created", Data: json.RawMessage(`{"order":1000}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Publish(ctx, "shop-1", api.NewEvent{Type: "product.saved", Data: json.RawMessage(`{"sku":"A-1"}`)}); err != nil {
		t.Fatal(err)
	}
	reader, err := c.CreateKey(ctx, api.KeyRequest{Name: "support", Grants: []api.Grant{{Stores: []string{"shop-*"}, Actions: []api.Action{api.ActionRead}}}})
	if err != nil {
		t.Fatal(err)
	}
	recv := newHookReceiver(t)

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800))
	actx, cancelA := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelA()
	bctx, cancelB := chromedp.NewContext(actx)
	defer cancelB()
	p := &page{t: t, ctx: bctx, base: "http://" + n.HTTPAddr(), shot: os.Getenv("HERALD_SCREENSHOTS")}
	// The first Run starts the browser, which lives as long as that
	// call's context: bctx itself, without a timeout.
	if err := chromedp.Do(bctx, chromedp.EmulateViewport(1280, 800)); err != nil {
		t.Fatalf("start %s: %v", chrome, err)
	}

	// A wrong key is refused with the API's message; the page keeps no key.
	p.open("")
	p.waitText("Sign in with an API key")
	p.fill("API key", "hk_not-a-real-key")
	p.click(button("Sign in"))
	p.waitText("That key was refused")
	p.screenshot("signin")
	stored := eval[string](p, `sessionStorage.getItem("herald.key") || ""`)
	if stored != "" {
		t.Fatalf("a refused key was kept: %q", stored)
	}

	// A read-only key sees stores and events, not webhooks, cluster or keys.
	p.fill("API key", reader.Key)
	p.click(button("Sign in"))
	p.waitText("Signed in as support")
	rail := eval[string](p, `document.querySelector("nav").innerText`)
	if !strings.Contains(rail, "Events") || strings.Contains(rail, "Webhooks") || strings.Contains(rail, "Cluster") || strings.Contains(rail, "Keys") {
		t.Fatalf("a read key's rail: %q", rail)
	}
	p.click(button("Sign out"))
	p.waitText("Sign in with an API key")

	// The admin key: the stores page.
	p.fill("API key", admin)
	p.click(button("Sign in"))
	p.waitText("Signed in as admin")
	p.waitJS("the store row", `[...document.querySelectorAll("table[aria-label=Stores] td")].some(td => td.innerText === "shop-1")`)
	href := eval[string](p, `location.href`)
	if strings.Contains(href, admin) || strings.Contains(href, "hk_") {
		t.Fatalf("the key is in the URL: %s", href)
	}
	p.screenshot("stores")

	// Add a webhook: URL, a type picked from those seen, a long retry
	// schedule (so that a failure waits for Redeliver).
	p.open("#/stores/shop-1/webhooks")
	p.waitText("No webhooks yet")
	p.click(button("Add webhook"))
	p.waitText("product.saved")
	p.fill("Endpoint URL", "ftp://x")
	p.waitText("Use http:// or https://")
	p.fill("Endpoint URL", recv.srv.URL+"/hooks/herald")
	p.click(`//label[contains(normalize-space(), "order.created")]/input`)
	p.click(`//summary[normalize-space()="Advanced"]`)
	p.fill("Retry schedule", "1h")
	p.fill("Description", "orders to the ERP")
	p.screenshot("webhook-form")
	// The server's refusal shows under the URL, with its message: the
	// node's own API is never a destination.
	p.fill("Endpoint URL", "http://"+n.HTTPAddr()+"/hooks")
	p.click(button("Add webhook"))
	p.waitText("blocked_destination")
	p.fill("Endpoint URL", recv.srv.URL+"/hooks/herald")
	p.click(button("Add webhook"))
	p.waitText("Shown once")
	secret := eval[string](p, `document.querySelector("[data-secret]").innerText`)
	if !strings.HasPrefix(secret, "whsec_") {
		t.Fatalf("the page showed %q as the secret", secret)
	}
	p.screenshot("webhook-secret")
	recv.mu.Lock()
	recv.secret = secret
	recv.mu.Unlock()
	subs, err := c.Subscriptions(ctx, "shop-1", nil)
	if err != nil || len(subs) != 1 || len(subs[0].Types) != 1 || subs[0].Types[0] != "order.created" || subs[0].RetrySchedule[0] != "1h0m0s" && subs[0].RetrySchedule[0] != "1h" {
		t.Fatalf("the webhook the form made: %+v %v", subs, err)
	}
	sub := subs[0]

	// Publish; the delivery log shows the attempt with the receiver's answer.
	res, err := c.Publish(ctx, "shop-1", api.NewEvent{Type: "order.created", Data: json.RawMessage(`{"order":1001}`)})
	if err != nil {
		t.Fatal(err)
	}
	ok := res.Events[0]
	waitFor(t, 20*time.Second, "the receiver gets order 1001", func() bool { return recv.count(ok.ID) > 0 })
	p.open("#/stores/shop-1/deliveries?sub=" + sub.ID)
	p.waitJS("a succeeded row", `[...document.querySelectorAll("table[aria-label=Deliveries] tr")].some(tr => tr.innerText.includes("succeeded"))`)
	p.click(`//table[@aria-label="Deliveries"]//tr[contains(., "succeeded")]`)
	p.waitText(`"receiver": "test"`)
	p.waitText("HTTP 200")
	p.waitText(`"order": 1001`) // the request body
	p.screenshot("deliveries")

	// The receiver fails: the failed attempt, its answer; then Redeliver.
	recv.set(500, "boom: the ERP is down")
	res, err = c.Publish(ctx, "shop-1", api.NewEvent{Type: "order.created", Data: json.RawMessage(`{"order":1002}`)})
	if err != nil {
		t.Fatal(err)
	}
	bad := res.Events[0]
	waitFor(t, 20*time.Second, "the receiver gets order 1002", func() bool { return recv.count(bad.ID) > 0 })
	p.open("#/stores/shop-1/deliveries?sub=" + sub.ID + "&status=failed")
	p.waitJS("a failed row", `[...document.querySelectorAll("table[aria-label=Deliveries] tr")].some(tr => tr.innerText.includes("failed"))`)
	p.click(`//table[@aria-label="Deliveries"]//tr[contains(., "failed")]`)
	p.waitText("boom: the ERP is down")
	p.waitText("HTTP 500")
	p.screenshot("delivery-failed")
	recv.set(200, `{"ok":true,"receiver":"test","again":true}`)
	p.click(button("Redeliver"))
	p.waitText("Queued for redelivery")
	waitFor(t, 20*time.Second, "the redelivery", func() bool { return recv.count(bad.ID) > 1 })
	p.waitJS("the redelivered attempt succeeded", `[...document.querySelectorAll("aside .attempt header")].some(h => h.innerText.includes("succeeded") && h.innerText.includes("manual"))`)
	p.waitText(`"again": true`)

	// The webhooks list with health, one webhook, a test event.
	p.open("#/stores/shop-1/webhooks")
	p.waitJS("the webhook row", `[...document.querySelectorAll("table[aria-label=Webhooks] tr")].some(tr => tr.innerText.includes("/hooks/herald") && tr.innerText.includes("succeeded"))`)
	p.screenshot("webhooks")
	p.open("#/stores/shop-1/webhooks/" + sub.ID)
	p.waitText("orders to the ERP")
	p.click(button("Send test event"))
	p.waitJS("the test attempt", `[...document.querySelectorAll("dialog .attempt")].some(a => a.innerText.includes("HTTP 200"))`)
	p.screenshot("webhook-test")
	eval[bool](p, `(document.querySelector("dialog").close(), true)`)

	// Events newest first, one opened.
	p.open("#/stores/shop-1/events")
	p.waitJS("newest first", `(() => { const r = [...document.querySelectorAll("table[aria-label=Events] tbody tr")].map(tr => +tr.cells[0].innerText); return r.length >= 3 && r[0] > r[1] })()`)
	p.click(`//table[@aria-label="Events"]//tbody/tr[1]`)
	p.waitText(`"order": 1002`)
	p.screenshot("events")
	// The live tail: an event published now appears on top.
	p.click(`//label[contains(normalize-space(), "Live tail")]/input`)
	p.waitJS("the stream is live", `[...document.querySelectorAll(".badge")].some(b => b.innerText.includes("live"))`)
	live, err := c.Publish(ctx, "shop-1", api.NewEvent{Type: "stock.moved", Data: json.RawMessage(`{"sku":"A-1","qty":-2}`)})
	if err != nil {
		t.Fatal(err)
	}
	p.waitJS("the live event on top", fmt.Sprintf(`(() => { const r = document.querySelector("table[aria-label=Events] tbody tr"); return !!r && r.cells[0].innerText === "%d" && r.innerText.includes("stock.moved") })()`, live.Events[0].Seq))

	// Pause asks first; cancelled, nothing changes.
	p.open("#/stores/shop-1/webhooks/" + sub.ID)
	p.waitText("orders to the ERP")
	p.click(button("Pause"))
	p.waitText("Pause webhook?")
	p.click(`//dialog//button[normalize-space()="Cancel"]`)
	if s, err := c.Subscription(ctx, "shop-1", sub.ID, nil); err != nil || s.Status != api.StatusActive {
		t.Fatalf("a cancelled pause changed the webhook: %+v %v", s, err)
	}

	// The keys page lists the keys; the cluster page the nodes.
	p.open("#/keys")
	p.waitJS("the key rows", `[...document.querySelectorAll("table[aria-label='API keys'] tr")].some(tr => tr.innerText.includes("support"))`)
	p.screenshot("keys")
	// The cluster page.
	p.open("#/cluster")
	p.waitJS("the node row", `[...document.querySelectorAll("table[aria-label=Nodes] tr")].some(tr => tr.innerText.includes("n1") && tr.innerText.includes("leader"))`)
	p.screenshot("cluster")

	// A phone: no page scrolls sideways.
	p.run("phone", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile, chromedp.EmulatePortrait))
	for _, hash := range []string{"#/stores", "#/stores/shop-1/webhooks", "#/stores/shop-1/deliveries?sub=" + sub.ID + "&event=" + bad.ID, "#/stores/shop-1/events", "#/cluster"} {
		p.open(hash)
		p.waitJS("the page "+hash, `!!document.querySelector("main h1")`)
		p.waitJS("its data "+hash, `!!document.querySelector("main table, main .empty")`)
		p.noHorizontalScroll(hash)
		if strings.Contains(hash, "event=") {
			p.waitText("Redeliver")
			p.noHorizontalScroll(hash + " with the event")
			p.screenshot("phone-delivery")
		}
	}
	p.open("#/stores/shop-1/webhooks/new")
	p.waitText("Endpoint URL")
	p.noHorizontalScroll("the webhook form")

	recv.mu.Lock()
	defer recv.mu.Unlock()
	if len(recv.bad) > 0 || recv.verified < 3 {
		t.Fatalf("signatures with the secret the page showed: %d verified, failures %v", recv.verified, recv.bad)
	}
}
