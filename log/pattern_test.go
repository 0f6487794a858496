package log

import (
	"errors"
	"strings"
	"testing"
)

func TestPatternMatch(t *testing.T) {
	cases := []struct {
		pattern, typ string
		want         bool
	}{
		{"store/order/created", "store/order/created", true},
		{"store/order/created", "store/order/paid", false},
		{"store/order/created", "Store/order/created", false},
		{"store/order/*", "store/order/created", true},
		{"store/order/*", "store/order", false},
		{"store/order/*", "store/order/line/added", false},
		{"store/*/created", "store/order/created", true},
		{"store/*/created", "store/stock/created", true},
		{"*", "x", true},
		{"*", "x/y", false},
		{"*/*", "x.y", true},
		{"store/order/**", "store/order/created", true},
		{"store/order/**", "store/order/line/added", true},
		{"store/order/**", "store/order", false},
		{"store/order/**", "store/orders/x", false},
		{"**", "anything", true},
		{"**", "a/b.c/d", true},
		{"*/**", "a", false},
		{"*/**", "a/b", true},
		{"production.order.*", "production.order.completed", true},
		{"production.order.*", "production/order/completed", true}, // separators are equivalent
		{"store.order.created", "store/order/created", true},
		{"production.*", "production.order.completed", false},
		{"production.**", "production.order.completed", true},
		{"a/*/c", "a//c", true}, // an empty segment is still a segment
		{"a/b", "a/b/", false},
		{"a/b", "a", false},
		{"a", "ab", false},
		{"ab", "a", false},
		{"x-y_z", "x-y_z", true},
	}
	for _, tc := range cases {
		p, err := ParsePattern(tc.pattern)
		if err != nil {
			t.Fatalf("%q: %v", tc.pattern, err)
		}
		if got := p.Match(tc.typ); got != tc.want {
			t.Errorf("%q.Match(%q) = %v, want %v", tc.pattern, tc.typ, got, tc.want)
		}
		if got := refMatch(tc.pattern, tc.typ); got != tc.want {
			t.Errorf("reference %q/%q = %v, want %v (test table wrong?)", tc.pattern, tc.typ, got, tc.want)
		}
	}
}

func TestPatternInvalid(t *testing.T) {
	for _, s := range []string{"", "a**b", "ord*", "*a", "**/x", "a/**/b", "***", "a//b", "/a", "a/", ".a", "a b", "a+b", strings.Repeat("a", 129)} {
		if _, err := ParsePattern(s); !errors.Is(err, ErrInvalidPattern) {
			t.Errorf("ParsePattern(%q) = %v, want ErrInvalidPattern", s, err)
		}
	}
	if _, err := ParsePatterns([]string{"ok/*", "bad**"}); !errors.Is(err, ErrInvalidPattern) {
		t.Errorf("ParsePatterns with a bad one: %v", err)
	}
	if ps, err := ParsePatterns(nil); ps != nil || err != nil {
		t.Errorf("ParsePatterns(nil) = %v, %v", ps, err)
	}
}

func TestMatchAny(t *testing.T) {
	if !MatchAny(nil, "x") {
		t.Fatal("empty list must match everything")
	}
	ps := []Pattern{MustParsePattern("a/*"), MustParsePattern("b/**")}
	if !MatchAny(ps, "a/x") || !MatchAny(ps, "b/x/y") || MatchAny(ps, "c/x") || MatchAny(ps, "a/x/y") {
		t.Fatal("MatchAny wrong")
	}
	if MustParsePattern("a/*").String() != "a/*" {
		t.Fatal("String")
	}
}

func TestMatchDoesNotAllocate(t *testing.T) {
	p := MustParsePattern("store/*/created")
	if n := testing.AllocsPerRun(100, func() { p.Match("store/order/created") }); n != 0 {
		t.Fatalf("Match allocates %v times", n)
	}
}

// refMatch is an independent, slow reference: split both on either
// separator and compare segment lists recursively.
func refMatch(pattern, typ string) bool {
	split := func(s string) []string { return strings.Split(strings.ReplaceAll(s, "/", "."), ".") }
	ps, ts := split(pattern), split(typ)
	var rec func(ps, ts []string) bool
	rec = func(ps, ts []string) bool {
		if len(ps) == 0 {
			return len(ts) == 0
		}
		if ps[0] == "**" && len(ps) == 1 {
			return len(ts) >= 1
		}
		if len(ts) == 0 {
			return false
		}
		if ps[0] != "*" && ps[0] != ts[0] {
			return false
		}
		return rec(ps[1:], ts[1:])
	}
	return rec(ps, ts)
}

func FuzzMatch(f *testing.F) {
	for _, s := range [][2]string{
		{"store/order/*", "store/order/created"}, {"**", "a"}, {"a.**", "a.b.c"}, {"*/*", "a/b"},
		{"production.order.*", "production/order/x"}, {"a/*/c", "a//c"}, {"x", "x/"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, typ string) {
		p, err := ParsePattern(pattern)
		if err != nil {
			return
		}
		if ValidateType(typ) != nil {
			// Match must still not panic on anything.
			p.Match(typ)
			return
		}
		if got, want := p.Match(typ), refMatch(pattern, typ); got != want {
			t.Fatalf("%q.Match(%q) = %v, reference says %v", pattern, typ, got, want)
		}
		// A pattern made from a type (no empty segments) matches it.
		if lp, err := ParsePattern(typ); err == nil && !strings.Contains(typ, "*") && !lp.Match(typ) {
			t.Fatalf("literal pattern %q does not match itself", typ)
		}
	})
}

func BenchmarkMatch(b *testing.B) {
	p := MustParsePattern("store/*/created")
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		p.Match("store/order/created")
	}
}
