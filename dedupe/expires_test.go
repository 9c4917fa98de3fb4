package dedupe_test

import (
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/dedupe"
)

// TestNewClaimExpiresAfterWindow: a new claim reports the end of its
// window (what the store's LRU remembers it until), and a later duplicate
// reports the same end, read back from Badger's TTL.
func TestNewClaimExpiresAfterWindow(t *testing.T) {
	db := openDB(t)
	ix, err := dedupe.New(90*time.Minute, 10)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	key := dedupe.Key("src", "evt-expiry")
	first := claim(t, db, ix, key, "A", now)
	if first.Dup || !first.Expires.Equal(now.Add(90*time.Minute)) {
		t.Fatalf("new claim = %+v, want new, expiring at %v", first, now.Add(90*time.Minute))
	}
	dup := claim(t, db, ix, key, "B", now.Add(time.Minute))
	if d := dup.Expires.Sub(first.Expires); !dup.Dup || d < -2*time.Second || d > 2*time.Second {
		t.Errorf("duplicate = %+v, want a duplicate expiring with the first claim (%v)", dup, first.Expires)
	}
}
