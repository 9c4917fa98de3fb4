package deliver

import (
	"math"
	"net/http"
	"testing"
	"time"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 3, 14, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		v    string
		want time.Duration
	}{
		{"absent", "", 0},
		{"one second", "1", time.Second},
		{"two minutes", "120", 2 * time.Minute},
		{"zero", "0", 0},
		{"negative", "-5", 0},
		{"fraction is not delay-seconds", "1.5", 0},
		{"garbage", "soon", 0},
		{"capped at one hour", "7200", time.Hour},
		{"exactly one hour", "3600", time.Hour},
		// 10^10 s overflows time.Duration when multiplied by time.Second;
		// it must still be capped, not wrap to a negative delay.
		{"huge delay-seconds", "10000000000", time.Hour},
		{"larger than int64", "99999999999999999999999", time.Hour},
		{"IMF-fixdate ahead", now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{"RFC 850 date ahead", now.Add(30 * time.Second).Format(time.RFC850), 30 * time.Second},
		{"ANSI C date ahead", now.Add(45 * time.Second).Format(time.ANSIC), 45 * time.Second},
		{"date far ahead is capped", now.Add(48 * time.Hour).Format(http.TimeFormat), time.Hour},
		{"date in the past", now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"date equal to now", now.Format(http.TimeFormat), 0},
		{"RFC 3339 is not an HTTP-date", now.Add(time.Minute).Format(time.RFC3339), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseRetryAfter(tt.v, now); got != tt.want {
				t.Errorf("parseRetryAfter(%q) = %v, want %v", tt.v, got, tt.want)
			}
		})
	}
}

func testDispatcher(initial, max time.Duration) *dispatcher {
	return &dispatcher{t: Target{Name: "t", InitialBackoff: initial, MaxBackoff: max}}
}

func TestBackoffBounds(t *testing.T) {
	d := testDispatcher(100*time.Millisecond, time.Second)
	tests := []struct {
		n      int
		lo, hi time.Duration
	}{
		{1, 50 * time.Millisecond, 100 * time.Millisecond},
		{2, 100 * time.Millisecond, 200 * time.Millisecond},
		{3, 200 * time.Millisecond, 400 * time.Millisecond},
		{4, 400 * time.Millisecond, 800 * time.Millisecond},
		{5, 500 * time.Millisecond, time.Second}, // capped at max_backoff
		{12, 500 * time.Millisecond, time.Second},
		{1000, 500 * time.Millisecond, time.Second},
	}
	for _, tt := range tests {
		for i := 0; i < 200; i++ {
			if got := d.backoff(tt.n, 0); got < tt.lo || got > tt.hi {
				t.Fatalf("backoff(%d) = %v, want within [%v, %v]", tt.n, got, tt.lo, tt.hi)
			}
		}
	}
}

func TestBackoffJitter(t *testing.T) {
	d := testDispatcher(time.Second, time.Hour)
	seen := map[time.Duration]bool{}
	for i := 0; i < 100; i++ {
		seen[d.backoff(3, 0)] = true
	}
	// 100 draws from [2s, 4s] in nanoseconds: identical values would mean
	// no jitter (retries of many deliveries would stampede together).
	if len(seen) < 50 {
		t.Errorf("backoff(3) took %d distinct values in 100 draws, want jitter", len(seen))
	}
}

func TestBackoffRetryAfterWins(t *testing.T) {
	d := testDispatcher(time.Second, 10*time.Second)
	if got, want := d.backoff(1, 30*time.Second), 30*time.Second; got != want {
		t.Errorf("backoff with Retry-After 30s = %v, want %v (Retry-After wins over max_backoff)", got, want)
	}
	if got, want := d.backoff(1, 5*time.Hour), time.Hour; got != want {
		t.Errorf("backoff with Retry-After 5h = %v, want %v (capped)", got, want)
	}
	if got := d.backoff(1, 0); got < 500*time.Millisecond || got > time.Second {
		t.Errorf("backoff without Retry-After = %v, want the computed one", got)
	}
}

// A max_backoff near the largest duration must not overflow the doubling
// (a negative backoff would make rand.N panic in a worker).
func TestBackoffHugeMax(t *testing.T) {
	max := time.Duration(math.MaxInt64)
	d := testDispatcher(time.Second, max)
	for _, n := range []int{1, 30, 34, 35, 63, 64, 100, 1000} {
		got := d.backoff(n, 0)
		if got < time.Second/2 || got > max {
			t.Errorf("backoff(%d) with max_backoff %v = %v, want positive and at most the max", n, max, got)
		}
	}
	if got := d.backoff(100, 0); got < max/4 {
		t.Errorf("backoff(100) = %v, want near max_backoff %v", got, max)
	}
}
