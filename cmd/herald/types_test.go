package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/herald-io/herald/api"
)

// TestTypes covers herald types: the table (types by name, counts without
// the duplicate, newest seq and time), -o json as the API's bytes, the
// truncated hint past 1,000 types, a store without events and an
// unknown one.
func TestTypes(t *testing.T) {
	_, c := singleNode(t)
	c.ok("publish", "shop-1", "order.created", "--id", "o1")
	c.ok("publish", "shop-1", "order.paid", "--id", "p1")
	c.ok("publish", "shop-1", "order.created", "--id", "o2")
	c.ok("publish", "shop-1", "order.created", "--id", "o2") // a duplicate

	st := okJSON[api.StoreTypes](c, "types", "shop-1")
	if st.Store != "shop-1" || st.Truncated || len(st.Types) != 2 {
		t.Fatalf("types JSON: %+v", st)
	}
	if ty := st.Types[0]; ty.Type != "order.created" || ty.Count != 2 || ty.LastSeq != 3 || ty.LastSeenAt.IsZero() {
		t.Fatalf("order.created: %+v", ty)
	}
	if got, want := c.ok("types", "shop-1", "-o", "json"), string(rawGet(t, c.addr+"/v1/stores/shop-1/types")); got != want {
		t.Fatalf("-o json:\n%s\nthe API:\n%s", got, want)
	}
	r := c.run("types", "shop-1", "--consistency", "local")
	rows := tableRows(r.stdout)
	if r.code != 0 || r.stderr != "" || len(rows) != 3 || strings.Join(rows[0], " ") != "TYPE COUNT LAST_SEQ LAST_SEEN" {
		t.Fatalf("table:\n%s", r)
	}
	if strings.Join(rows[1][:3], " ") != "order.created 2 3" || strings.Join(rows[2][:3], " ") != "order.paid 1 2" || rows[1][3] != fmtTime(st.Types[0].LastSeenAt) {
		t.Fatalf("rows: %q", rows)
	}

	var b strings.Builder
	for i := range 1001 {
		fmt.Fprintf(&b, "{\"type\":\"t/%04d\"}\n", i)
	}
	file := filepath.Join(t.TempDir(), "many.jsonl")
	writeFile(t, file, b.String())
	c.ok("publish", "many", "--batch", file, "-o", "json")
	r = c.run("types", "many")
	if rows := tableRows(r.stdout); r.code != 0 || len(rows) != 1001 || rows[1000][0] != "t/0999" ||
		r.stderr != "truncated: store many holds events of types not listed (at most 1,000 types per store are tracked)\n" {
		t.Fatalf("past the bound: %d rows, stderr %q", len(rows), r.stderr)
	}
	if st := okJSON[api.StoreTypes](c, "types", "many"); !st.Truncated || len(st.Types) != 1000 {
		t.Fatalf("past the bound, JSON: truncated %v, %d types", st.Truncated, len(st.Types))
	}

	wantAPIError(t, c.run("types", "nosuch"), "not_found")
	wantAPIError(t, c.run("types", "Bad!"), "invalid_store")
	wantUsage(t, c.run("types"), "herald types wants STORE, got 0 arguments", "herald types")
}
