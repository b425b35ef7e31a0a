package store

import (
	"errors"
	"testing"
)

// TestNextVersion: semantic versions count up by the bump.
func TestNextVersion(t *testing.T) {
	cases := []struct {
		ma, mi, pa int
		bump       string
		want       [3]int
	}{
		{0, 0, 0, "patch", [3]int{0, 0, 1}},
		{0, 0, 0, "minor", [3]int{0, 1, 0}},
		{0, 0, 0, "major", [3]int{1, 0, 0}},
		{1, 2, 3, "patch", [3]int{1, 2, 4}},
		{1, 2, 3, "minor", [3]int{1, 3, 0}},
		{1, 2, 3, "major", [3]int{2, 0, 0}},
	}
	for _, c := range cases {
		ma, mi, pa, err := NextVersion(c.ma, c.mi, c.pa, c.bump)
		if err != nil || [3]int{ma, mi, pa} != c.want {
			t.Errorf("NextVersion(%d.%d.%d, %s) = %d.%d.%d, %v; want %v", c.ma, c.mi, c.pa, c.bump, ma, mi, pa, err, c.want)
		}
	}
	for _, bad := range []string{"", "Major", "micro", "minor "} {
		if _, _, _, err := NextVersion(1, 2, 3, bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("NextVersion bump %q: %v, want ErrInvalid", bad, err)
		}
	}
}
