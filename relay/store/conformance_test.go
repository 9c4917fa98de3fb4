package store_test

import (
	"context"
	"testing"

	"github.com/hookrelay/hookrelay/relay/storage"
	"github.com/hookrelay/hookrelay/relay/storage/storagetest"
	"github.com/hookrelay/hookrelay/relay/store"
)

var _ storage.Store = (*store.Store)(nil)

// TestConformance runs the storage conformance suite against Badger
// directories, sync off, with the dedupe cache at its configured default
// size (so that the suite also covers the cache in front of the claims).
func TestConformance(t *testing.T) {
	dirs := map[string]string{} // store name -> directory
	storagetest.Run(t, storagetest.Harness{
		Open: func(t *testing.T, name string, o storagetest.Options) storage.Store {
			t.Helper()
			dir, ok := dirs[name]
			if !ok {
				dir = t.TempDir()
				dirs[name] = dir
			}
			st, err := store.Open(context.Background(), store.Options{
				Path: dir, Sync: false, Retention: o.Retention, DedupeWindow: o.DedupeWindow, CacheSize: 100000,
			})
			if err != nil {
				t.Fatalf("store.Open %s: %v", name, err)
			}
			return st
		},
	})
}
