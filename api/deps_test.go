package api_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportsNothingOfTheServer: package api depends on the standard
// library only, so a program that talks to Herald pulls in nothing else.
func TestImportsNothingOfTheServer(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) != 1 || deps[0] != "github.com/herald-io/herald/api" {
		t.Fatalf("api depends on more than the standard library: %v", deps)
	}
}
