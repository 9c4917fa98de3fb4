package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/relay/storage"
	"github.com/hookrelay/hookrelay/relay/store"
)

// fakeDisk is an injected free-space reading.
type fakeDisk struct{ free atomic.Uint64 }

func (d *fakeDisk) FreeSpace(string) (uint64, error) { return d.free.Load(), nil }

const testMinFree = 100 << 20

func openWithDisk(t *testing.T, dir string, d *fakeDisk, readOnlyWhenLow bool) (*store.Store, error) {
	t.Helper()
	return store.Open(context.Background(), store.Options{
		Path: dir, MinFreeBytes: testMinFree, FreeSpace: d.FreeSpace, SpaceTick: 5 * time.Millisecond,
		ReadOnlyWhenLow: readOnlyWhenLow,
	})
}

func ingestOne(st *store.Store, i int) (storage.Result, error) {
	now := time.Now()
	ev := &storage.Event{Source: "sp", Provider: "sketchpen", Type: "video.completed", ReceivedAt: now, Time: now,
		DedupeKey: fmt.Sprint("space-", i), Targets: []string{"media"}}
	return st.Ingest(context.Background(), ev, []byte(fmt.Sprintf(`{"n":%d}`, i)))
}

// TestLowSpaceRefusesAndResumes: below storage.min_free_bytes the store
// refuses new events with a *LowSpaceError (an ErrUnavailable: 503) and
// Ready says why with the figures; a duplicate is still recognised; once
// space is back it takes events again by itself, and every event it
// acknowledged is still there.
func TestLowSpaceRefusesAndResumes(t *testing.T) {
	d := &fakeDisk{}
	d.free.Store(1 << 30)
	st, err := openWithDisk(t, t.TempDir(), d, false)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close(context.Background())
	var acked []string
	for i := range 5 {
		res, err := ingestOne(st, i)
		if err != nil {
			t.Fatalf("Ingest %d: %v", i, err)
		}
		acked = append(acked, res.ID)
	}
	if err := st.Ready(); err != nil {
		t.Fatalf("Ready with space: %v", err)
	}

	d.free.Store(testMinFree - 1)
	waitUntil(t, "Ready to fail", func() bool { return st.Ready() != nil })
	err = st.Ready()
	var lse *storage.LowSpaceError
	if !errors.As(err, &lse) || !errors.Is(err, storage.ErrUnavailable) || lse.Free != testMinFree-1 || lse.Min != testMinFree {
		t.Fatalf("Ready = %v, want a *LowSpaceError with the figures", err)
	}
	if !strings.Contains(err.Error(), "100.0 MiB") {
		t.Errorf("Ready error %q does not name the minimum", err)
	}
	if _, err := ingestOne(st, 100); !errors.Is(err, storage.ErrLowSpace) {
		t.Fatalf("Ingest when low = %v, want ErrLowSpace", err)
	}
	if res, err := ingestOne(st, 0); err != nil || !res.Duplicate || res.ID != acked[0] {
		t.Errorf("duplicate when low = %+v, %v; want the first id (no write needed)", res, err)
	}
	if free, low, known := st.Space(); !low || !known || free != testMinFree-1 {
		t.Errorf("Space() = %d, %v, %v", free, low, known)
	}
	// Above the minimum but inside the hysteresis: still refusing.
	d.free.Store(testMinFree + 1)
	time.Sleep(30 * time.Millisecond)
	if st.Ready() == nil {
		t.Error("recovered inside the hysteresis band")
	}

	d.free.Store(1 << 30)
	waitUntil(t, "Ready to recover", func() bool { return st.Ready() == nil })
	res, err := ingestOne(st, 100)
	if err != nil {
		t.Fatalf("Ingest after recovery: %v", err)
	}
	acked = append(acked, res.ID)
	for _, id := range acked {
		if _, _, err := st.Get(context.Background(), id); err != nil {
			t.Errorf("acknowledged event %s: %v", id, err)
		}
	}
}

// TestLowSpaceHardFloor: below half the minimum no write of any kind is
// made (Badger's own flushes need the rest) and no delivery is handed out
// (its attempt could not be recorded); above it delivery records still
// are.
func TestLowSpaceHardFloor(t *testing.T) {
	d := &fakeDisk{}
	d.free.Store(1 << 30)
	st, err := openWithDisk(t, t.TempDir(), d, false)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close(context.Background())
	res, err := ingestOne(st, 1)
	if err != nil {
		t.Fatal(err)
	}
	d.free.Store(testMinFree * 3 / 4)
	waitUntil(t, "low", func() bool { return st.Ready() != nil })
	if err := st.Requeue(context.Background(), res.ID, "media", time.Now()); err != nil {
		t.Errorf("Requeue above the hard floor: %v", err)
	}
	if dues, _, err := st.DueDeliveries(context.Background(), "media", time.Now().Add(time.Minute), 10, nil); err != nil || len(dues) != 1 {
		t.Errorf("DueDeliveries above the hard floor: %d, %v; want the delivery", len(dues), err)
	}
	d.free.Store(testMinFree / 4)
	time.Sleep(30 * time.Millisecond)
	if err := st.Requeue(context.Background(), res.ID, "media", time.Now()); !errors.Is(err, storage.ErrLowSpace) {
		t.Errorf("Requeue below the hard floor = %v, want ErrLowSpace", err)
	}
	// Nothing is handed out for an attempt that could not be recorded.
	if dues, next, err := st.DueDeliveries(context.Background(), "media", time.Now().Add(time.Minute), 10, nil); err != nil || len(dues) != 0 || next.IsZero() {
		t.Errorf("DueDeliveries below the hard floor: %d, next %v, %v; want none and a time to look again", len(dues), next, err)
	}
}

// TestOpenOnFullDisk: opening for writing on a nearly full disk fails with
// a message naming the figures and the key (never a crash); a reader that
// asks for it gets a read-only store and sees the events.
func TestOpenOnFullDisk(t *testing.T) {
	dir := t.TempDir()
	d := &fakeDisk{}
	d.free.Store(1 << 30)
	st, err := openWithDisk(t, dir, d, false)
	if err != nil {
		t.Fatal(err)
	}
	res, err := ingestOne(st, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(context.Background()); err != nil {
		t.Fatal(err)
	}

	d.free.Store(10 << 20)
	_, err = openWithDisk(t, dir, d, false)
	if !errors.Is(err, storage.ErrLowSpace) {
		t.Fatalf("Open on a full disk = %v, want ErrLowSpace", err)
	}
	for _, want := range []string{dir, "10.0 MiB free", "storage.min_free_bytes"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Open error %q does not contain %q", err, want)
		}
	}

	ro, err := openWithDisk(t, dir, d, true)
	if err != nil {
		t.Fatalf("read-only open: %v", err)
	}
	defer ro.Close(context.Background())
	if v, _, err := ro.Get(context.Background(), res.ID); err != nil || v.ID != res.ID {
		t.Fatalf("Get on the read-only store: %v", err)
	}
	evs, _, err := ro.List(context.Background(), storage.Filter{}, "", 10)
	if err != nil || len(evs) != 1 {
		t.Fatalf("List on the read-only store: %d events, %v", len(evs), err)
	}
	if _, err := ingestOne(ro, 2); err == nil {
		t.Error("a read-only store took an event")
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestWatchSpace: the watch of a directory another program writes goes
// low below the minimum and back only above it plus 1/16.
func TestWatchSpace(t *testing.T) {
	d := &fakeDisk{}
	d.free.Store(2 * testMinFree)
	w := store.WatchSpace("/srv/nats", testMinFree, d.FreeSpace, 5*time.Millisecond, nil)
	defer w.Stop()
	if err := w.Err(); err != nil {
		t.Fatalf("Err with room: %v", err)
	}
	waitErr := func(want bool) error {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			err := w.Err()
			if (err != nil) == want || time.Now().After(deadline) {
				return err
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	d.free.Store(testMinFree - 1)
	err := waitErr(true)
	var lse *storage.LowSpaceError
	if !errors.As(err, &lse) || lse.Path != "/srv/nats" || lse.Free != testMinFree-1 || lse.Min != testMinFree || !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("Err when low: %v", err)
	}
	if free, low, known := w.Space(); free != testMinFree-1 || !low || !known {
		t.Errorf("Space: %d %v %v", free, low, known)
	}
	d.free.Store(testMinFree + testMinFree/32) // above the minimum, below the way back
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if free, _, _ := w.Space(); free == testMinFree+testMinFree/32 || time.Now().After(deadline) {
			break // read again
		}
	}
	if w.Err() == nil {
		t.Fatal("back to taking events at min + 1/32: it must wait for min + 1/16")
	}
	d.free.Store(testMinFree + testMinFree/16)
	if err := waitErr(false); err != nil {
		t.Fatalf("Err with space back: %v", err)
	}
	w.Stop() // twice is fine
}
