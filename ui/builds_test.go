package ui

import (
	"math"
	"strconv"
	"testing"
	"time"
)

func TestClaimWait(t *testing.T) {
	i := func(n int) *int { return &n }
	for _, tc := range []struct {
		in   *int
		max  time.Duration
		want time.Duration
		ok   bool
	}{
		{nil, 0, 0, true},
		{i(0), 0, 0, true},
		{i(30), 0, 30 * time.Second, true},
		{i(60), 0, 60 * time.Second, true},
		{i(61), 0, 60 * time.Second, true},
		{i(5), 2 * time.Second, 2 * time.Second, true},
		// 9223372037 s × time.Second overflows int64 nanoseconds.
		{i(9223372037), 0, 60 * time.Second, true},
		{i(math.MaxInt), 0, 60 * time.Second, true},
		{i(-1), 0, 0, false},
		{i(math.MinInt), 0, 0, false},
	} {
		got, ok := claimWait(tc.in, tc.max)
		if got != tc.want || ok != tc.ok {
			in := "nil"
			if tc.in != nil {
				in = strconv.Itoa(*tc.in)
			}
			t.Errorf("claimWait(%s, %v) = %v, %v; want %v, %v", in, tc.max, got, ok, tc.want, tc.ok)
		}
	}
}
