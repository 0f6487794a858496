package main

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/herald-io/herald/api"
	"github.com/herald-io/herald/internal/testutil"
)

// blockValue is the value of "key:" in a key/value block.
func blockValue(t *testing.T, block, key string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(key) + `: +(.*)$`).FindStringSubmatch(block)
	if m == nil {
		t.Fatalf("no %q in:\n%s", key, block)
	}
	return m[1]
}

func newSecret(t *testing.T) string {
	b := make([]byte, 32)
	rand.Read(b)
	return "whsec_" + base64.StdEncoding.EncodeToString(b)
}

// TestSubscriptions covers every subs command: create prints the secret
// once (table and JSON), get/list never do, update changes only the flags
// given, pause/enable, rotate, test, delete, the subscriptions alias.
func TestSubscriptions(t *testing.T) {
	_, c := singleNode(t)
	rcv := newReceiver(t)
	if r := c.run("subs", "list", "shop"); r.code != 0 || r.stdout != "" || r.stderr != "no subscriptions on store shop\n" {
		t.Fatalf("empty list:\n%s", r)
	}
	if l := okJSON[api.SubscriptionList](c, "subs", "list", "shop"); l.Subscriptions == nil || len(l.Subscriptions) != 0 {
		t.Fatalf("empty list JSON: %+v", l)
	}

	out := c.ok("subs", "create", "shop", "--url", rcv.url(), "--type", "store/order/*", "--type", "store/stock/*", "--retry", "1s,2s",
		"--max-in-flight", "4", "--rate-limit", "50", "--timeout", "5s", "--header", "X-A=1", "--header", "X-B=two=2",
		"--description", "first sub", "--disable-after", "1h")
	id1 := blockValue(t, out, "id")
	secret1 := blockValue(t, out, "secret")
	if !strings.HasPrefix(id1, "sub_") || !strings.HasPrefix(secret1, "whsec_") || !strings.Contains(out, "shown only this once") ||
		blockValue(t, out, "status") != "active" || blockValue(t, out, "types") != "store/order/*,store/stock/*" ||
		blockValue(t, out, "headers") != "X-A: 1, X-B: two=2" || blockValue(t, out, "retry schedule") != "1s, 2s" {
		t.Fatalf("create table:\n%s", out)
	}

	own := newSecret(t)
	s2 := okJSON[api.Subscription](c, "subs", "create", "shop", "--url", rcv.url(), "--secret", own, "--from-seq", "1", "--ordered", "--disabled")
	if s2.Secret != own || !s2.Ordered || s2.Enabled || s2.Status != api.StatusPaused || s2.MaxInFlight != 1 || s2.Cursor != 0 || len(s2.Types) != 0 {
		t.Fatalf("create JSON: %+v", s2)
	}

	// get never shows the secret.
	raw := c.ok("subs", "get", "shop", id1, "-o", "json")
	if strings.Contains(raw, "secret") || strings.Contains(raw, "whsec_") {
		t.Fatalf("get shows a secret: %s", raw)
	}
	before := decodeOne[api.Subscription](t, raw)
	want := api.Subscription{ID: id1, Store: "shop", URL: rcv.url(), Types: []string{"store/order/*", "store/stock/*"}, Description: "first sub",
		Enabled: true, MaxInFlight: 4, RateLimit: 50, Timeout: "5s", RetrySchedule: []string{"1s", "2s"},
		Headers: map[string]string{"X-A": "1", "X-B": "two=2"}, DisableAfter: "1h", Status: api.StatusActive}
	got := before
	if got.Health == nil {
		t.Fatalf("get without health: %s", raw)
	}
	got.CreatedAt, got.UpdatedAt, got.Cursor, got.Health = time.Time{}, time.Time{}, 0, nil
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("get:\n%+v\nwant\n%+v", got, want)
	}
	if tbl := c.ok("subs", "get", "shop", id1); strings.Contains(tbl, "whsec_") || strings.Contains(tbl, "secret") || blockValue(t, tbl, "url") != rcv.url() ||
		blockValue(t, tbl, "lag") != fmt.Sprintf("%d events", before.Health.LagEvents) {
		t.Fatalf("get table:\n%s", tbl)
	}
	rows := tableRows(c.ok("subscriptions", "list", "shop"))
	if len(rows) != 3 || rows[0][0] != "ID" || rows[0][3] != "LAG" || rows[0][4] != "LAST" || !slices.ContainsFunc(rows[1:], func(r []string) bool { return r[0] == id1 && r[1] == "active" }) ||
		!slices.ContainsFunc(rows[1:], func(r []string) bool { return r[0] == s2.ID && r[1] == "paused" }) {
		t.Fatalf("list: %q", rows)
	}
	if l := okJSON[api.SubscriptionList](c, "subs", "list", "shop"); len(l.Subscriptions) != 2 || l.Subscriptions[0].Secret != "" || l.Subscriptions[1].Secret != "" {
		t.Fatalf("list JSON: %+v", l)
	}

	// update changes only the flags given.
	check := func(what string, after api.Subscription, change func(*api.Subscription)) {
		t.Helper()
		exp := before
		change(&exp)
		exp.UpdatedAt, after.UpdatedAt = time.Time{}, time.Time{}
		if !reflect.DeepEqual(after, exp) {
			t.Fatalf("after %s:\n%+v\nwant\n%+v", what, after, exp)
		}
		before = okJSON[api.Subscription](c, "subs", "get", "shop", id1)
	}
	upd := okJSON[api.Subscription](c, "subs", "update", "shop", id1, "--description", "second")
	check("--description", okJSON[api.Subscription](c, "subs", "get", "shop", id1), func(s *api.Subscription) { s.Description = "second" })
	if upd.Description != "second" {
		t.Fatalf("update answer: %+v", upd)
	}
	c.ok("subs", "update", "shop", id1, "--type", "", "--header", "", "--retry", "3s", "--max-in-flight", "2")
	check("--type '' --header '' --retry --max-in-flight", okJSON[api.Subscription](c, "subs", "get", "shop", id1), func(s *api.Subscription) {
		s.Types, s.Headers, s.RetrySchedule, s.MaxInFlight = []string{}, map[string]string{}, []string{"3s"}, 2
	})
	r := herald(t, opts{env: []string{"HERALD_SUBS_UPDATE_TIMEOUT=7s"}}, "subs", "update", "shop", id1, "--addr", c.addr, "--rate-limit", "0")
	if r.code != 0 {
		t.Fatal(r)
	}
	check("$HERALD_SUBS_UPDATE_TIMEOUT and --rate-limit 0", okJSON[api.Subscription](c, "subs", "get", "shop", id1), func(s *api.Subscription) {
		s.Timeout, s.RateLimit = "7s", 0
	})
	c.ok("subs", "update", "shop", id1, "--disabled")
	check("--disabled", okJSON[api.Subscription](c, "subs", "get", "shop", id1), func(s *api.Subscription) { s.Enabled, s.Status = false, api.StatusPaused })
	c.ok("subs", "update", "shop", id1, "--disabled=false", "--url", rcv.url()+"2")
	check("--disabled=false --url", okJSON[api.Subscription](c, "subs", "get", "shop", id1), func(s *api.Subscription) {
		s.Enabled, s.Status, s.URL = true, api.StatusActive, rcv.url()+"2"
	})

	// pause and enable.
	if out := c.ok("subs", "pause", "shop", id1); blockValue(t, out, "status") != "paused" {
		t.Fatalf("pause:\n%s", out)
	}
	if s := okJSON[api.Subscription](c, "subs", "enable", "shop", id1); s.Status != api.StatusActive || !s.Enabled {
		t.Fatalf("enable: %+v", s)
	}

	// rotate: a generated secret, then our own; shown once each.
	rot := okJSON[api.Subscription](c, "subs", "rotate", "shop", s2.ID, "--grace", "0s")
	if !strings.HasPrefix(rot.Secret, "whsec_") || rot.Secret == own || rot.ID != s2.ID {
		t.Fatalf("rotate: %+v", rot)
	}
	own2 := newSecret(t)
	out = c.ok("subs", "rotate", "shop", s2.ID, "--secret", own2)
	if blockValue(t, out, "secret") != own2 || !strings.Contains(out, "shown only this once") {
		t.Fatalf("rotate table:\n%s", out)
	}
	wantAPIError(t, c.run("subs", "rotate", "shop", s2.ID, "--secret", "whsec_tooshort"), "invalid_subscription")

	// test sends a herald.test event to the endpoint now.
	d := okJSON[api.Delivery](c, "subs", "test", "shop", s2.ID)
	if d.Status != api.DeliverySucceeded || d.ResponseStatus != 204 || d.EventID == "" || d.RequestHeaders["webhook-id"] != d.EventID {
		t.Fatalf("test: %+v", d)
	}
	if n := rcv.count(d.EventID); n != 1 {
		t.Fatalf("the receiver got the test event %d times", n)
	}
	rcv.fail(true)
	out = c.ok("subs", "test", "shop", s2.ID)
	rcv.fail(false)
	for _, w := range []string{"attempt 1: FAILED", "response status: 500", "  response headers:\n", "    x-receiver: failing\n", "  response body:\n    receiver says no\n"} {
		if !strings.Contains(out, w) {
			t.Fatalf("test table lacks %q:\n%s", w, out)
		}
	}

	// delete.
	if out := c.ok("subs", "delete", "shop", id1); out != "deleted subscription "+id1+"\n" {
		t.Fatalf("delete: %q", out)
	}
	wantAPIError(t, c.run("subs", "get", "shop", id1), "not_found")
	if out := c.ok("subs", "delete", "shop", s2.ID, "-o", "json"); out != "" {
		t.Fatalf("delete -o json printed %q", out)
	}
	if l := okJSON[api.SubscriptionList](c, "subs", "list", "shop"); len(l.Subscriptions) != 0 {
		t.Fatalf("after delete: %+v", l)
	}
	wantAPIError(t, c.run("subs", "create", "shop", "--url", "ftp://example.com/"), "invalid_subscription")
}

// deliveriesOf lists a subscription's delivery log with a status.
func deliveriesOf(c client, store, sub, status string) api.DeliveryPage {
	args := []string{"deliveries", "list", store, sub}
	if status != "" {
		args = append(args, "--status", status)
	}
	return okJSON[api.DeliveryPage](c, args...)
}

func hasDelivery(p api.DeliveryPage, eventID string, status api.DeliveryStatus) bool {
	return slices.ContainsFunc(p.Deliveries, func(d api.Delivery) bool { return d.EventID == eventID && d.Status == status })
}

// TestDeliveries covers the delivery log against a local receiver that
// answers 204 or 500: list with each status (table and JSON), get (every
// attempt with headers and body), redeliver, replay from a seq, from a
// time, and of the dead deliveries only.
func TestDeliveries(t *testing.T) {
	_, c := singleNode(t)
	rcv := newReceiver(t)
	sub := okJSON[api.Subscription](c, "subs", "create", "shop", "--url", rcv.url(), "--type", "main.*", "--retry", "100ms").ID
	slow := okJSON[api.Subscription](c, "subs", "create", "shop", "--url", rcv.url(), "--type", "slow.*", "--retry", "1h").ID
	const wait = 30 * time.Second

	e1 := okJSON[api.Event](c, "publish", "shop", "main.one")
	testutil.WaitFor(t, wait, "e1 delivered", func() bool {
		return hasDelivery(deliveriesOf(c, "shop", sub, "succeeded"), e1.ID, api.DeliverySucceeded)
	})

	rcv.fail(true)
	e2 := okJSON[api.Event](c, "publish", "shop", "main.two")
	testutil.WaitFor(t, wait, "e2 dead", func() bool { return hasDelivery(deliveriesOf(c, "shop", sub, "dead"), e2.ID, api.DeliveryDead) })
	e3 := okJSON[api.Event](c, "publish", "shop", "slow.one")
	testutil.WaitFor(t, wait, "e3 pending", func() bool { return hasDelivery(deliveriesOf(c, "shop", slow, "pending"), e3.ID, api.DeliveryPending) })
	rcv.fail(false)

	// list, every status, JSON.
	all := deliveriesOf(c, "shop", sub, "")
	if len(all.Deliveries) != 3 || !hasDelivery(all, e1.ID, api.DeliverySucceeded) || !hasDelivery(all, e2.ID, api.DeliveryFailed) || !hasDelivery(all, e2.ID, api.DeliveryDead) {
		t.Fatalf("every attempt: %+v", all)
	}
	if f := deliveriesOf(c, "shop", sub, "failed"); len(f.Deliveries) != 1 || f.Deliveries[0].EventID != e2.ID || f.Deliveries[0].Attempt != 1 ||
		f.Deliveries[0].ResponseStatus != 500 || f.Deliveries[0].NextAttemptAt.IsZero() {
		t.Fatalf("failed: %+v", f)
	}
	p := deliveriesOf(c, "shop", slow, "pending")
	if len(p.Deliveries) != 1 || p.Deliveries[0].Attempts != 1 || p.Deliveries[0].Seq != e3.Seq || time.Until(p.Deliveries[0].NextAttemptAt) < 30*time.Minute {
		t.Fatalf("pending: %+v", p)
	}
	// list, tables.
	rows := tableRows(c.ok("deliveries", "list", "shop", sub))
	if len(rows) != 4 || strings.Join(rows[0], " ") != "ID EVENT_ID SEQ ATTEMPT STATUS AT DURATION RESPONSE NEXT_ATTEMPT" ||
		rows[1][1] != e1.ID || rows[1][4] != "succeeded" || rows[1][7] != "204" || rows[2][4] != "failed" || rows[2][7] != "500" || rows[3][4] != "dead" {
		t.Fatalf("list table: %q", rows)
	}
	rows = tableRows(c.ok("deliveries", "list", "shop", slow, "--status", "pending"))
	if len(rows) != 2 || strings.Join(rows[0], " ") != "EVENT_ID SEQ STATUS ATTEMPTS NEXT_ATTEMPT MANUAL LAST_ERROR" || rows[1][0] != e3.ID || rows[1][2] != "pending" {
		t.Fatalf("pending table: %q", rows)
	}
	rows = tableRows(c.ok("deliveries", "list", "shop", sub, "--status", "dead"))
	if len(rows) != 2 || rows[1][1] != e2.ID || rows[1][4] != "dead" {
		t.Fatalf("dead table: %q", rows)
	}
	// Paging says how to get the next page.
	r := c.run("deliveries", "list", "shop", sub, "--limit", "1")
	if r.code != 0 || len(tableRows(r.stdout)) != 2 || !regexp.MustCompile(`^next page: herald deliveries list shop `+sub+` --after \d+\n$`).MatchString(r.stderr) {
		t.Fatalf("first page:\n%s", r)
	}
	if rs := c.run("deliveries", "list", "shop", slow, "--status", "dead"); rs.code != 0 || rs.stdout != "" || rs.stderr != "no deliveries\n" {
		t.Fatalf("empty list:\n%s", rs)
	}

	// get: every attempt for one event.
	ed := okJSON[api.EventDeliveries](c, "deliveries", "get", "shop", sub, e2.ID)
	if ed.EventID != e2.ID || len(ed.Attempts) != 2 || ed.Attempts[0].Status != api.DeliveryFailed || ed.Attempts[1].Status != api.DeliveryDead {
		t.Fatalf("get: %+v", ed)
	}
	a := ed.Attempts[1]
	if a.Attempt != 2 || a.ResponseStatus != 500 || a.ResponseBody != "receiver says no" || a.RequestHeaders["webhook-id"] != e2.ID || a.ResponseHeaders["x-receiver"] != "failing" {
		t.Fatalf("attempt: %+v", a)
	}
	out := c.ok("deliveries", "get", "shop", sub, e2.ID)
	for _, w := range []string{
		"attempt 1 (id " + itoa(ed.Attempts[0].ID) + "): FAILED\n", "attempt 2 (id " + itoa(a.ID) + "): DEAD\n",
		"  event:           " + e2.ID + " (seq 2)\n", "  response status: 500\n",
		"  request headers:\n", "    webhook-id: " + e2.ID + "\n", "    herald-attempt: 2\n", "    webhook-signature: (elided)\n",
		"  response headers:\n", "    x-receiver: failing\n", "  response body:\n    receiver says no\n",
	} {
		if !strings.Contains(out, w) {
			t.Fatalf("get table lacks %q:\n%s", w, out)
		}
	}
	wantAPIError(t, c.run("deliveries", "get", "shop", "sub_nope", e2.ID), "not_found")

	// redeliver e2, now that the receiver answers 204.
	rd := okJSON[api.Redelivery](c, "deliveries", "redeliver", "shop", sub, e2.ID)
	if rd.EventID != e2.ID || rd.SubscriptionID != sub || rd.Seq != 2 || rd.Status != api.DeliveryPending {
		t.Fatalf("redeliver: %+v", rd)
	}
	testutil.WaitFor(t, wait, "e2 redelivered", func() bool {
		return slices.ContainsFunc(deliveriesOf(c, "shop", sub, "succeeded").Deliveries, func(d api.Delivery) bool { return d.EventID == e2.ID && d.Manual })
	})
	if out := c.ok("deliveries", "redeliver", "shop", sub, e1.ID); !strings.HasPrefix(out, "queued "+e1.ID+" (seq 1) for "+sub+", due ") {
		t.Fatalf("redeliver table: %q", out)
	}
	testutil.WaitFor(t, wait, "e1 redelivered", func() bool { return rcv.count(e1.ID) >= 2 })

	// replay from a seq: the cursor moves back, e1 and e2 go out again.
	n1, n2 := rcv.count(e1.ID), rcv.count(e2.ID)
	rp := okJSON[api.ReplayResult](c, "deliveries", "replay", "shop", sub, "--from-seq", "1")
	if rp.FromSeq != 1 || rp.Queued == 0 {
		t.Fatalf("replay --from-seq: %+v", rp)
	}
	testutil.WaitFor(t, wait, "replayed from seq 1", func() bool { return rcv.count(e1.ID) > n1 && rcv.count(e2.ID) > n2 })
	// ... and handed off: the cursor is back at the end. (A replay moves
	// the cursor back only; an event still in flight when it comes is not
	// sent twice, so replaying before this may queue nothing.)
	testutil.WaitFor(t, wait, "the replay handed off", func() bool {
		return okJSON[api.Subscription](c, "subs", "get", "shop", sub).Cursor == okJSON[api.Store](c, "stores", "shop").LastSeq
	})
	// replay from a time before e2: e2 goes out again, e1 does not.
	n1, n2 = rcv.count(e1.ID), rcv.count(e2.ID)
	since := e2.Timestamp.Add(-time.Microsecond).Format(time.RFC3339Nano)
	if out := c.ok("deliveries", "replay", "shop", sub, "--since", since); !regexp.MustCompile(`^replaying from seq 2: \d+ log positions queued\n$`).MatchString(out) {
		t.Fatalf("replay --since: %q", out)
	}
	testutil.WaitFor(t, wait, "replayed since e2", func() bool { return rcv.count(e2.ID) > n2 })
	// replay --only dead: only a dead delivery goes back.
	rcv.fail(true)
	e4 := okJSON[api.Event](c, "publish", "shop", "main.four")
	testutil.WaitFor(t, wait, "e4 dead", func() bool { return hasDelivery(deliveriesOf(c, "shop", sub, "dead"), e4.ID, api.DeliveryDead) })
	rcv.fail(false)
	n4 := rcv.count(e4.ID)
	rp = okJSON[api.ReplayResult](c, "deliveries", "replay", "shop", sub, "--from-seq", "4", "--only", "dead")
	if rp.FromSeq != 4 || rp.Queued != 1 {
		t.Fatalf("replay --only dead: %+v", rp)
	}
	testutil.WaitFor(t, wait, "e4 replayed", func() bool { return rcv.count(e4.ID) > n4 })
	if rcv.count(e1.ID) != n1 {
		t.Fatalf("e1 was sent again (%d, was %d) by replays that started after it", rcv.count(e1.ID), n1)
	}
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }
