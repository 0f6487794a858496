package log

import (
	"fmt"
	"strings"
)

// Pattern is a compiled event-type pattern. Types and patterns are split
// into segments at '.' or '/' (the two are equivalent); "*" matches exactly
// one segment; a trailing "**" matches one or more remaining segments;
// "**" alone matches every type.
type Pattern struct {
	src  string
	segs []string // literal segments, "*" or a final "**"
	tail bool     // last segment is "**"
}

var patternChars = newCharset("._/-*")

// ParsePattern compiles s.
func ParsePattern(s string) (Pattern, error) {
	if s == "" || len(s) > MaxTypeLen {
		return Pattern{}, fmt.Errorf("%w: %.100q must be 1-%d characters", ErrInvalidPattern, s, MaxTypeLen)
	}
	for i := 0; i < len(s); i++ {
		if !patternChars[s[i]] {
			return Pattern{}, fmt.Errorf("%w: %.100q may contain only [A-Za-z0-9._/*-]", ErrInvalidPattern, s)
		}
	}
	segs := strings.FieldsFunc(s, func(r rune) bool { return r == '.' || r == '/' })
	if n := strings.Count(s, ".") + strings.Count(s, "/") + 1; n != len(segs) {
		return Pattern{}, fmt.Errorf("%w: %.100q has an empty segment", ErrInvalidPattern, s)
	}
	p := Pattern{src: s, segs: segs}
	for i, seg := range segs {
		if !strings.Contains(seg, "*") {
			continue
		}
		switch {
		case seg == "*":
		case seg == "**" && i == len(segs)-1:
			p.tail = true
		case seg == "**":
			return Pattern{}, fmt.Errorf("%w: %.100q: ** is allowed only as the last segment", ErrInvalidPattern, s)
		default:
			return Pattern{}, fmt.Errorf("%w: %.100q: * must be a whole segment", ErrInvalidPattern, s)
		}
	}
	return p, nil
}

// MustParsePattern is ParsePattern that panics on error.
func MustParsePattern(s string) Pattern {
	p, err := ParsePattern(s)
	if err != nil {
		panic(err)
	}
	return p
}

// ParsePatterns compiles a list; an empty list gives nil.
func ParsePatterns(ss []string) ([]Pattern, error) {
	if len(ss) == 0 {
		return nil, nil
	}
	out := make([]Pattern, 0, len(ss))
	for _, s := range ss {
		p, err := ParsePattern(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// String returns the pattern's source.
func (p Pattern) String() string { return p.src }

// Match reports whether eventType matches. It does not allocate.
func (p Pattern) Match(eventType string) bool {
	n := len(p.segs)
	if p.tail {
		n--
	}
	rest := eventType
	for i := 0; i < n; i++ {
		j := strings.IndexAny(rest, "./")
		seg := rest
		if j >= 0 {
			seg, rest = rest[:j], rest[j+1:]
		}
		if p.segs[i] != "*" && p.segs[i] != seg {
			return false
		}
		if j < 0 {
			// The type has no more segments: a match only if the pattern
			// has none either ("**" needs at least one).
			return i == n-1 && !p.tail
		}
	}
	// Every literal segment matched and a separator follows: the rest
	// holds one or more segments, which only "**" accepts.
	return p.tail
}

// MatchAny reports whether t matches any of ps; an empty ps matches
// everything.
func MatchAny(ps []Pattern, t string) bool {
	if len(ps) == 0 {
		return true
	}
	for i := range ps {
		if ps[i].Match(t) {
			return true
		}
	}
	return false
}
