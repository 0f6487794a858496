package httpapi

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/herald-io/herald/api"
)

// TestErrorTableMatchesDocs: docs/api.md's error table and the codes the
// API answers with (api's codes, which errors.go maps to) are the same
// set, with the same statuses, both ways.
func TestErrorTableMatchesDocs(t *testing.T) {
	raw, err := os.ReadFile("../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	start := strings.Index(doc, "\n## Errors\n")
	if start < 0 {
		t.Fatal("docs/api.md has no ## Errors section")
	}
	section := doc[start+1:]
	if end := strings.Index(section[3:], "\n## "); end >= 0 {
		section = section[:end+3]
	}
	row := regexp.MustCompile("(?m)^\\| (\\d{3}) \\| `([a-z_]+)` \\|")
	documented := map[api.ErrorCode]int{}
	for _, m := range row.FindAllStringSubmatch(section, -1) {
		status, _ := strconv.Atoi(m[1])
		code := api.ErrorCode(m[2])
		if _, dup := documented[code]; dup {
			t.Errorf("docs/api.md lists %s twice", code)
		}
		documented[code] = status
	}
	if len(documented) == 0 {
		t.Fatal("no rows parsed from the error table")
	}
	for code, status := range documented {
		if !code.Known() {
			t.Errorf("docs/api.md documents %s, which api does not define", code)
		} else if code.Status() != status {
			t.Errorf("%s: docs say %d, api says %d", code, status, code.Status())
		}
	}
	for _, code := range api.Codes() {
		if _, ok := documented[code]; !ok {
			t.Errorf("%s (%d) is not in docs/api.md's error table", code, code.Status())
		}
	}
	// Every code errors.go maps to is one of them.
	for _, e := range errorCodes {
		if !e.code.Known() {
			t.Errorf("errors.go maps %v to unknown code %s", e.err, e.code)
		}
	}
}
