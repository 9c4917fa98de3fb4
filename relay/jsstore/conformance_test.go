package jsstore_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/hookrelay/hookrelay/relay/jsstore"
	"github.com/hookrelay/hookrelay/relay/jsstore/jstest"
	"github.com/hookrelay/hookrelay/relay/storage"
	"github.com/hookrelay/hookrelay/relay/storage/storagetest"
)

// harness opens each store name as its own stream on urls.
func harness(urls []string, replicas int) storagetest.Harness {
	names := map[string]string{}
	return storagetest.Harness{
		Open: func(t *testing.T, name string, o storagetest.Options) storage.Store {
			t.Helper()
			stream, ok := names[name]
			if !ok {
				stream = fmt.Sprintf("hr%d", len(names))
				names[name] = stream
			}
			st, err := jsstore.Open(context.Background(), jsstore.Options{
				URLs: urls, Replicas: replicas, Retention: o.Retention, DedupeWindow: o.DedupeWindow, Name: stream,
			})
			if err != nil {
				t.Fatalf("jsstore.Open %s: %v", name, err)
			}
			return st
		},
	}
}

func TestConformanceSingle(t *testing.T) {
	storagetest.Run(t, harness(jstest.Single(t), 1))
}

func TestConformanceCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("3-server cluster")
	}
	c := jstest.NewCluster(t, 3)
	storagetest.Run(t, harness(c.URLs(), 3))
}
