package benchenv

import (
	"slices"
	"testing"
)

func TestSizes(t *testing.T) {
	const v = "HERALD_BENCHENV_TEST_SIZES"
	for _, tc := range []struct {
		env  string
		want []int
		bad  bool
	}{
		{"", []int{7, 8}, false},
		{"100, 2000,30000", []int{100, 2000, 30000}, false},
		{"100,ten", nil, true},
		{"99", nil, true},
		{"100,", nil, true},
	} {
		t.Setenv(v, tc.env)
		got, err := Sizes(v, 100, 7, 8)
		if (err != nil) != tc.bad || !slices.Equal(got, tc.want) {
			t.Errorf("%s=%q: %v, %v; want %v (error: %v)", v, tc.env, got, err, tc.want, tc.bad)
		}
	}
}
