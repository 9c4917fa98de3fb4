package dedupe_test

import (
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/hookrelay/hookrelay/dedupe"
)

func openDB(t *testing.T) *badger.DB {
	t.Helper()
	db, err := badger.Open(badger.DefaultOptions(t.TempDir()).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func claim(t *testing.T, db *badger.DB, ix *dedupe.Index, key []byte, id string, now time.Time) dedupe.Claim {
	t.Helper()
	var c dedupe.Claim
	err := db.Update(func(txn *badger.Txn) error {
		var err error
		c, err = ix.Claim(txn, key, id, now)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestClaimFirstWins(t *testing.T) {
	db := openDB(t)
	ix, err := dedupe.New(time.Hour, 10)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	key := dedupe.Key("src", "evt-1")
	if c := claim(t, db, ix, key, "A", now); c.Dup || c.ID != "A" {
		t.Fatalf("first claim = %+v, want new A", c)
	}
	c := claim(t, db, ix, key, "B", now)
	if got, want := c.ID, "A"; !c.Dup || got != want {
		t.Fatalf("second claim = %+v, want duplicate of %s", c, want)
	}
	if c.Expires.Before(now.Add(59*time.Minute)) || c.Expires.After(now.Add(61*time.Minute)) {
		t.Errorf("duplicate's expiry %v not about an hour after %v", c.Expires, now)
	}
	// Keys are per source.
	if c := claim(t, db, ix, dedupe.Key("other", "evt-1"), "C", now); c.Dup {
		t.Errorf("same key in another source = duplicate, want new")
	}
}

func TestKeyIsBoundedAndUnambiguous(t *testing.T) {
	long := make([]byte, 1<<20)
	if got := len(dedupe.Key("s", string(long))); got != len(dedupe.Prefix)+32 {
		t.Errorf("key length %d, want %d", got, len(dedupe.Prefix)+32)
	}
	if string(dedupe.Key("ab", "c")) == string(dedupe.Key("a", "bc")) {
		t.Error("source/key boundary is ambiguous")
	}
}

func TestCacheOnlyShortcutsSeen(t *testing.T) {
	ix, err := dedupe.New(time.Hour, 2)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	k := dedupe.Key("s", "k")
	if _, ok := ix.Cached(k, now); ok {
		t.Fatal("empty cache reported a key as seen")
	}
	ix.Remember(k, "A", now.Add(time.Minute))
	if id, ok := ix.Cached(k, now); !ok || id != "A" {
		t.Fatalf("Cached = %q, %v; want A, true", id, ok)
	}
	// An entry past its window is a miss (Badger decides), never a "seen".
	if _, ok := ix.Cached(k, now.Add(2*time.Minute)); ok {
		t.Error("expired cache entry reported as seen")
	}
	// Eviction only forgets: a miss sends the caller to Badger.
	ix.Remember(dedupe.Key("s", "x"), "X", now.Add(time.Hour))
	ix.Remember(dedupe.Key("s", "y"), "Y", now.Add(time.Hour))
	if _, ok := ix.Cached(k, now); ok {
		t.Error("evicted key still cached")
	}
}

func TestClaimExpiresWithWindow(t *testing.T) {
	db := openDB(t)
	ix, err := dedupe.New(time.Second, 0)
	if err != nil {
		t.Fatal(err)
	}
	key := dedupe.Key("s", "k")
	claim(t, db, ix, key, "A", time.Now())
	// Badger TTLs have one-second resolution: wait for the window to pass.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c := claim(t, db, ix, key, "B", time.Now())
		if !c.Dup {
			if c.ID != "B" {
				t.Fatalf("claim after window = %+v, want new B", c)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("key still claimed 5s after a 1s window")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestNewRejectsBadWindow(t *testing.T) {
	if _, err := dedupe.New(0, 10); err == nil {
		t.Error("New(0) succeeded, want error")
	}
}
