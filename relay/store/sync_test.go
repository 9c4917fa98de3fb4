package store_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/hookrelay/hookrelay/relay/store"
)

// TestSyncWrites: the store opens Badger with synchronous writes exactly
// when Options.Sync (storage.sync) asks for them.
func TestSyncWrites(t *testing.T) {
	for _, sync := range []bool{false, true} {
		t.Run(fmt.Sprint("sync-", sync), func(t *testing.T) {
			st, err := store.Open(context.Background(), store.Options{Path: t.TempDir(), Sync: sync})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer st.Close(context.Background())
			if got, want := st.SyncWrites(), sync; got != want {
				t.Errorf("SyncWrites() = %v, want %v", got, want)
			}
		})
	}
}
