package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/hookrelay/hookrelay/dedupe"
	"github.com/hookrelay/hookrelay/relay/storage"
	"github.com/hookrelay/hookrelay/relay/store"
)

// TestIngestTTLs: an ingested event's metadata, raw body and delivery
// record expire after storage.retention, its dedupe claim after
// dedupe.window (read back from the Badger directory itself).
func TestIngestTTLs(t *testing.T) {
	const retention, window = 50 * time.Hour, 3 * time.Hour
	dir := t.TempDir()
	st, err := store.Open(context.Background(), store.Options{Path: dir, Retention: retention, DedupeWindow: window})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	ev := &storage.Event{Source: "sp", Type: "t", ReceivedAt: now, DedupeKey: "ttl-1", Targets: []string{"media"}}
	res, err := st.Ingest(context.Background(), ev, []byte(`{}`))
	if err != nil || res.Duplicate {
		t.Fatalf("Ingest = %+v, %v", res, err)
	}
	if err := st.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	db, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, c := range []struct {
		key string
		ttl time.Duration
	}{
		{"m/" + res.ID, retention},
		{"r/" + res.ID, retention},
		{"a/" + res.ID + "/media", retention},
		{string(dedupe.Key("sp", "ttl-1")), window},
	} {
		err := db.View(func(txn *badger.Txn) error {
			item, err := txn.Get([]byte(c.key))
			if err != nil {
				return err
			}
			exp := time.Unix(int64(item.ExpiresAt()), 0)
			if d := exp.Sub(now.Add(c.ttl)); d < -5*time.Second || d > 5*time.Second {
				t.Errorf("%q expires at %v, want about %v (%v after ingest)", c.key, exp, now.Add(c.ttl), c.ttl)
			}
			return nil
		})
		if err != nil {
			t.Errorf("%q: %v", c.key, err)
		}
	}
}
