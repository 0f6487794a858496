package benchenv

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Sizes returns the comma-separated counts in the variable name, each at
// least min, or def when the variable is unset or empty.
func Sizes(name string, min int, def ...int) ([]int, error) {
	s := os.Getenv(name)
	if s == "" {
		return def, nil
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < min {
			return nil, fmt.Errorf("%s: %q is not a count of at least %d", name, f, min)
		}
		out = append(out, n)
	}
	return out, nil
}
