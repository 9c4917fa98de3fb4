package relay_test

import (
	"fmt"
	"testing"
)

// TestStorageSyncReachesBadger: storage.sync in the config file is the
// option the running server's Badger was opened with.
func TestStorageSyncReachesBadger(t *testing.T) {
	for _, sync := range []bool{false, true} {
		t.Run(fmt.Sprint("sync-", sync), func(t *testing.T) {
			ts := startServer(t, fmt.Sprintf(`
server:
  listen: 127.0.0.1:0
storage:
  path: {{DATA}}
  sync: %v
sources:
  sp:
    provider: sketchpen
    secrets: [s3cr3t]
`, sync))
			st, ok := ts.Store().(interface{ SyncWrites() bool })
			if !ok {
				t.Fatalf("the Badger store (%T) does not report its SyncWrites", ts.Store())
			}
			if got, want := st.SyncWrites(), sync; got != want {
				t.Errorf("storage.sync: %v: Badger SyncWrites = %v, want %v", sync, got, want)
			}
		})
	}
}
