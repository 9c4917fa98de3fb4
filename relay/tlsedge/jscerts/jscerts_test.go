package jscerts

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/relay/jsstore/jstest"
	"github.com/nats-io/nats.go/jetstream"
)

// nats.go's KV key check (jetstream/kv.go validKeyRe plus its dot rules).
var natsKeyRe = regexp.MustCompile(`^[-/_=\.a-zA-Z0-9]+$`)

func natsKeyValid(k string) bool {
	return natsKeyRe.MatchString(k) && k[0] != '.' && k[len(k)-1] != '.' && !strings.Contains(k, "..")
}

func TestKeyMapping(t *testing.T) {
	for _, tc := range []struct{ key, want string }{
		{"certificates/acme-v02.api.letsencrypt.org-directory/example.com/example.com.crt",
			"certificates.acme-v02=2Eapi=2Eletsencrypt=2Eorg-directory.example=2Ecom.example=2Ecom=2Ecrt"},
		{"acme/ca/users/ops@example.com/ops.json", "acme.ca.users.ops=40example=2Ecom.ops=2Ejson"},
		{"issue_cert_example.com", "issue_cert_example=2Ecom"},
		{"/a//b/", "a.b"},
		{"a=b/.", "a=3Db.=2E"},
		{"wildcard_.x/..", "wildcard_=2Ex.=2E=2E"},
		{"ünï code/ *", "=C3=BCn=C3=AF=20code.=20=2A"},
	} {
		got, err := encodeKey(tc.key)
		if err != nil || got != tc.want {
			t.Errorf("encodeKey(%q) = %q, %v; want %q", tc.key, got, err, tc.want)
			continue
		}
		if !natsKeyValid(got) {
			t.Errorf("encodeKey(%q) = %q: not a valid NATS KV key", tc.key, got)
		}
		back, err := decodeKey(got)
		if err != nil || back != canonical(tc.key) {
			t.Errorf("decodeKey(%q) = %q, %v; want %q", got, back, err, canonical(tc.key))
		}
	}
	for _, k := range []string{"", "/", "//"} {
		if _, err := encodeKey(k); err == nil {
			t.Errorf("encodeKey(%q) succeeded", k)
		}
	}
	for _, k := range []string{"a=4", "a=zz", "a b", "a=4G"} {
		if _, err := decodeKey(k); err == nil {
			t.Errorf("decodeKey(%q) succeeded", k)
		}
	}
	// random keys round-trip and are always valid
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		b := make([]byte, 1+r.IntN(40))
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		key := canonical(string(b))
		if key == "" {
			continue
		}
		enc, err := encodeKey(key)
		if err != nil || !natsKeyValid(enc) {
			t.Fatalf("encodeKey(%q) = %q, %v: invalid", key, enc, err)
		}
		if back, err := decodeKey(enc); err != nil || back != key {
			t.Fatalf("round trip of %q = %q, %v", key, back, err)
		}
	}
}

func TestStorage(t *testing.T) {
	url := startServers(t, 1)[0]
	s := newStorage(t, url, Options{Bucket: "sem"})
	other := newStorage(t, url, Options{Bucket: "sem"}) // a second node on its own connection
	ctx := ctxT(t, 20*time.Second)

	files := map[string]string{
		"certificates/ca.example/example.com/example.com.crt":  "CERT",
		"certificates/ca.example/example.com/example.com.key":  "KEY",
		"certificates/ca.example/example.com/example.com.json": "{}",
		"certificates/ca.example/b.example/b.example.crt":      "B",
		"acme/ca.example/users/ops@example.com/ops.json":       "ACCOUNT",
		"top":        "T",
		"topless/x":  "X", // "top" is not a prefix of "topless"
		"empty/file": "",
	}
	before := time.Now().Add(-time.Second)
	for k, v := range files {
		if err := s.Store(ctx, k, []byte(v)); err != nil {
			t.Fatalf("Store(%q): %v", k, err)
		}
	}
	for k, v := range files {
		got, err := other.Load(ctx, k)
		if err != nil || string(got) != v {
			t.Errorf("Load(%q) from the other node = %q, %v; want %q", k, got, err, v)
		}
	}
	// overwrite
	if err := other.Store(ctx, "top", []byte("T2")); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Load(ctx, "top"); string(got) != "T2" {
		t.Errorf("Load after overwrite = %q, want T2", got)
	}

	// Load, Stat of missing keys: fs.ErrNotExist
	for _, k := range []string{"nope", "certificates/ca.example/example.com/nope.crt", "certificates/ca.example"} {
		if _, err := s.Load(ctx, k); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Load(%q) = %v, want fs.ErrNotExist", k, err)
		}
	}
	if _, err := s.Stat(ctx, "nope/x"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat(missing) = %v, want fs.ErrNotExist", err)
	}
	if _, err := s.List(ctx, "nope", false); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("List(missing) = %v, want fs.ErrNotExist", err)
	}

	for _, tc := range []struct {
		key    string
		exists bool
	}{
		{"top", true}, {"certificates", true}, {"certificates/ca.example/example.com", true},
		{"certificates/ca.example/example.com/example.com.crt", true}, {"/certificates/ca.example/", true},
		{"certificates/ca", false}, {"to", false}, {"nope", false}, {"empty/file", true},
	} {
		if got := s.Exists(ctx, tc.key); got != tc.exists {
			t.Errorf("Exists(%q) = %v, want %v", tc.key, got, tc.exists)
		}
	}

	fi, err := s.Stat(ctx, "certificates/ca.example/example.com/example.com.key")
	if err != nil || !fi.IsTerminal || fi.Size != 3 || fi.Key != "certificates/ca.example/example.com/example.com.key" ||
		fi.Modified.Before(before) || fi.Modified.After(time.Now().Add(time.Second)) {
		t.Errorf("Stat(file) = %+v, %v", fi, err)
	}
	fi, err = s.Stat(ctx, "certificates/ca.example")
	if err != nil || fi.IsTerminal || fi.Key != "certificates/ca.example" {
		t.Errorf("Stat(dir) = %+v, %v", fi, err)
	}

	for _, tc := range []struct {
		prefix    string
		recursive bool
		want      []string
	}{
		{"certificates/ca.example", false, []string{"certificates/ca.example/b.example", "certificates/ca.example/example.com"}},
		{"certificates/ca.example/example.com", false, []string{
			"certificates/ca.example/example.com/example.com.crt", "certificates/ca.example/example.com/example.com.json",
			"certificates/ca.example/example.com/example.com.key"}},
		{"certificates", true, []string{
			"certificates/ca.example", "certificates/ca.example/b.example", "certificates/ca.example/b.example/b.example.crt",
			"certificates/ca.example/example.com", "certificates/ca.example/example.com/example.com.crt",
			"certificates/ca.example/example.com/example.com.json", "certificates/ca.example/example.com/example.com.key"}},
		{"acme/ca.example/users", false, []string{"acme/ca.example/users/ops@example.com"}},
		{"", false, []string{"acme", "certificates", "empty", "top", "topless"}},
		{"top", false, []string{}}, // a file: nothing below it
	} {
		got, err := s.List(ctx, tc.prefix, tc.recursive)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("List(%q, %v) = %q, %v; want %q", tc.prefix, tc.recursive, got, err, tc.want)
		}
	}

	// Delete: a file, a directory, a missing key
	if err := s.Delete(ctx, "certificates/ca.example/b.example/b.example.crt"); err != nil {
		t.Fatal(err)
	}
	if s.Exists(ctx, "certificates/ca.example/b.example") {
		t.Error("directory of the deleted file still exists")
	}
	if err := other.Delete(ctx, "certificates/ca.example/example.com"); err != nil {
		t.Fatal(err)
	}
	for k := range files {
		gone := strings.HasPrefix(k, "certificates/")
		if _, err := s.Load(ctx, k); gone != errors.Is(err, fs.ErrNotExist) {
			t.Errorf("after Delete, Load(%q) = %v (want gone: %v)", k, err, gone)
		}
	}
	if s.Exists(ctx, "certificates") {
		t.Error("certificates still exists after its last file was deleted")
	}
	if err := s.Delete(ctx, "certificates"); err != nil {
		t.Errorf("Delete(already gone) = %v", err)
	}
	if err := s.Delete(ctx, "never/was"); err != nil {
		t.Errorf("Delete(missing) = %v", err)
	}
	if err := s.Delete(ctx, "top"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Load(ctx, "topless/x"); string(got) != "X" {
		t.Errorf("Delete(top) touched topless/x: %q", got)
	}
	// a deleted key can be stored again
	if err := s.Store(ctx, "top", []byte("again")); err != nil {
		t.Fatal(err)
	}
	if got, err := other.Load(ctx, "top"); string(got) != "again" {
		t.Errorf("Load after re-Store = %q, %v", got, err)
	}
	if err := s.Store(ctx, "/", []byte("x")); err == nil {
		t.Error("Store of an empty key succeeded")
	}
	// a canceled context is honoured
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Load(cctx, "top"); err == nil {
		t.Error("Load with a canceled context succeeded")
	}
	if _, err := s.List(cctx, "", true); err == nil {
		t.Error("List with a canceled context succeeded")
	}
}

func TestNew(t *testing.T) {
	url := startServers(t, 1)[0]
	js := connect(t, url)
	ctx := ctxT(t, 10*time.Second)
	for _, o := range []Options{
		{Bucket: "bad.name"}, {Bucket: "x", Replicas: 7}, {Bucket: "x", LockTTL: time.Millisecond},
	} {
		if _, err := New(ctx, js, o); err == nil {
			t.Errorf("New(%+v) succeeded", o)
		}
	}
	if _, err := New(ctx, nil, Options{}); err == nil {
		t.Error("New without JetStream succeeded")
	}
	s, err := New(ctx, js, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s.LockTTL() != DefaultLockTTL || s.String() != "jscerts:"+DefaultBucket {
		t.Errorf("defaults: TTL %v, %s", s.LockTTL(), s)
	}
	// reads go to the stream leader
	info, err := js.Stream(ctx, "KV_"+DefaultBucket)
	if err != nil || info.CachedInfo().Config.AllowDirect {
		t.Errorf("data stream: %v, allow_direct %v", err, info != nil && info.CachedInfo().Config.AllowDirect)
	}
	// a second node with another TTL follows the bucket's
	s2, err := New(ctx, js, Options{LockTTL: 5 * time.Second})
	if err != nil || s2.LockTTL() != DefaultLockTTL {
		t.Errorf("second New: TTL %v, %v; want the bucket's %v", s2.LockTTL(), err, DefaultLockTTL)
	}
	// a lock bucket without TTL is refused
	if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "nottl_locks"}); err != nil {
		t.Fatal(err)
	}
	if _, err := New(ctx, js, Options{Bucket: "nottl"}); err == nil || !strings.Contains(err.Error(), "no TTL") {
		t.Errorf("New on a lock bucket without TTL = %v", err)
	}
}

// Two nodes (two connections), three goroutines each, contend for one
// lock: never two holders at once.
func TestLockMutualExclusion(t *testing.T) {
	url := startServers(t, 1)[0]
	nodes := []*Storage{
		newStorage(t, url, Options{Bucket: "mx", LockTTL: time.Second}),
		newStorage(t, url, Options{Bucket: "mx", LockTTL: time.Second}),
	}
	ctx := ctxT(t, 30*time.Second)
	var inside, total atomic.Int32
	var wg sync.WaitGroup
	for _, s := range nodes {
		for range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 3 {
					if err := s.Lock(ctx, "issue_cert_mx.example"); err != nil {
						t.Errorf("Lock: %v", err)
						return
					}
					if n := inside.Add(1); n != 1 {
						t.Errorf("%d holders at once", n)
					}
					time.Sleep(10 * time.Millisecond)
					inside.Add(-1)
					total.Add(1)
					if err := s.Unlock(ctx, "issue_cert_mx.example"); err != nil {
						t.Errorf("Unlock: %v", err)
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	if total.Load() != 18 {
		t.Errorf("critical sections = %d, want 18", total.Load())
	}
	// TryLock: one wins, the other gets false
	ok, err := nodes[0].TryLock(ctx, "ari_x")
	if !ok || err != nil {
		t.Fatalf("TryLock on a free lock = %v, %v", ok, err)
	}
	if ok, err := nodes[1].TryLock(ctx, "ari_x"); ok || err != nil {
		t.Errorf("TryLock on a held lock = %v, %v", ok, err)
	}
	// only the holder can unlock
	if err := nodes[1].Unlock(ctx, "ari_x"); !errors.Is(err, ErrNotHeld) {
		t.Errorf("Unlock by a non-holder = %v, want ErrNotHeld", err)
	}
	if ok, _ := nodes[1].TryLock(ctx, "ari_x"); ok {
		t.Error("a non-holder's Unlock released the lock")
	}
	if err := nodes[0].Unlock(ctx, "ari_x"); err != nil {
		t.Error(err)
	}
	if err := nodes[0].Unlock(ctx, "ari_x"); !errors.Is(err, ErrNotHeld) {
		t.Errorf("second Unlock = %v, want ErrNotHeld", err)
	}
	if ok, _ := nodes[1].TryLock(ctx, "ari_x"); !ok {
		t.Error("lock not free after Unlock")
	}
}

// A held lock is refreshed: it outlives its TTL for as long as it is held.
func TestLockRefreshed(t *testing.T) {
	url := startServers(t, 1)[0]
	// TTL 2s (refresh every 667ms): a busy -race run may delay a refresh
	a := newStorage(t, url, Options{Bucket: "rf", LockTTL: 2 * time.Second})
	b := newStorage(t, url, Options{Bucket: "rf", LockTTL: 2 * time.Second})
	ctx := ctxT(t, 20*time.Second)
	if err := a.Lock(ctx, "slow_order"); err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(4500 * time.Millisecond); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if ok, err := b.TryLock(ctx, "slow_order"); ok || err != nil {
			t.Fatalf("TryLock while held (and refreshed) = %v, %v", ok, err)
		}
	}
	if err := a.RenewLockLease(ctx, "slow_order", time.Minute); err != nil {
		t.Errorf("RenewLockLease = %v", err)
	}
	if err := a.Unlock(ctx, "slow_order"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := b.Lock(ctx, "slow_order"); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("Lock after Unlock took %v", d)
	}
}

// The holder vanishes (its connection closes, its refresher fails): the
// lock expires after about its TTL and another node gets it.
func TestLockExpiresWhenHolderDies(t *testing.T) {
	url := startServers(t, 1)[0]
	const ttl = 1500 * time.Millisecond
	dead := newStorage(t, url, Options{Bucket: "ex", LockTTL: ttl})
	live := newStorage(t, url, Options{Bucket: "ex", LockTTL: ttl})
	ctx := ctxT(t, 20*time.Second)
	if err := dead.Lock(ctx, "issue_cert_dead.example"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(ttl / 2) // at least one refresh
	dead.js.Conn().Close()
	died := time.Now()
	if err := live.Lock(ctxT(t, 10*ttl), "issue_cert_dead.example"); err != nil {
		t.Fatalf("Lock after the holder died: %v", err)
	}
	waited := time.Since(died)
	t.Logf("lock taken over %v after the holder died (TTL %v)", waited.Round(time.Millisecond), ttl)
	if waited < ttl/3 || waited > 3*ttl {
		t.Errorf("taken over after %v, want about the TTL %v", waited, ttl)
	}
	if err := live.Unlock(ctx, "issue_cert_dead.example"); err != nil {
		t.Error(err)
	}
}

// A holder that stopped refreshing (paused past its TTL) and whose lock was
// taken: it learns it lost the lock, and its Unlock does not release the
// new holder's.
func TestLockLost(t *testing.T) {
	url := startServers(t, 1)[0]
	const ttl = time.Second
	a := newStorage(t, url, Options{Bucket: "lost", LockTTL: ttl})
	b := newStorage(t, url, Options{Bucket: "lost", LockTTL: ttl})
	c := newStorage(t, url, Options{Bucket: "lost", LockTTL: ttl})
	ctx := ctxT(t, 20*time.Second)
	if err := a.Lock(ctx, "l"); err != nil {
		t.Fatal(err)
	}
	a.mu.Lock()
	h := a.held["l"]
	a.mu.Unlock()
	h.halt() // a is paused: no more refreshes
	if err := b.Lock(ctxT(t, 10*ttl), "l"); err != nil {
		t.Fatal(err)
	}
	if err := a.RenewLockLease(ctx, "l", time.Minute); !errors.Is(err, ErrLockLost) {
		t.Errorf("RenewLockLease of a lost lock = %v, want ErrLockLost", err)
	}
	if err := a.Unlock(ctx, "l"); !errors.Is(err, ErrLockLost) {
		t.Errorf("Unlock of a lost lock = %v, want ErrLockLost", err)
	}
	if ok, _ := c.TryLock(ctx, "l"); ok {
		t.Fatal("the old holder's Unlock released the new holder's lock")
	}
	if err := b.Unlock(ctx, "l"); err != nil {
		t.Error(err)
	}
	if ok, _ := c.TryLock(ctx, "l"); !ok {
		t.Error("lock not free after the new holder's Unlock")
	}
}

func TestLockContext(t *testing.T) {
	url := startServers(t, 1)[0]
	a := newStorage(t, url, Options{Bucket: "cx", LockTTL: time.Second})
	b := newStorage(t, url, Options{Bucket: "cx", LockTTL: time.Second})
	ctx := ctxT(t, 20*time.Second)
	if err := a.Lock(ctx, "held"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err := b.Lock(ctxT(t, 300*time.Millisecond), "held")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Lock with a deadline = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Lock returned %v after its deadline of 300ms", d)
	}
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- b.Lock(cctx, "held") }()
	time.Sleep(200 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("canceled Lock = %v, want Canceled", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Lock did not return after its context was canceled")
	}
	// the failed waiters hold nothing
	if err := b.Unlock(ctx, "held"); !errors.Is(err, ErrNotHeld) {
		t.Errorf("Unlock after failed Locks = %v, want ErrNotHeld", err)
	}
	if err := a.Unlock(ctx, "held"); err != nil {
		t.Error(err)
	}
}

// TestLoadAcrossOutage: a Load made while no server answers (all three
// down: replicas answer reads by themselves) is asked again and answers
// once they are back, instead of failing: certmagic does not retry a
// failed load when it starts managing a domain.
func TestLoadAcrossOutage(t *testing.T) {
	c := jstest.NewCluster(t, 3)
	s := newStorage(t, c.URL(0), Options{Bucket: "certs", Replicas: 3})
	ctx := ctxT(t, 60*time.Second)
	if err := s.Store(ctx, "certificates/x/x.key", []byte("key")); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		c.Kill(i)
	}
	got := make(chan error, 1)
	go func() {
		v, err := s.Load(ctx, "certificates/x/x.key")
		if err == nil && string(v) != "key" {
			err = fmt.Errorf("loaded %q, want %q", v, "key")
		}
		got <- err
	}()
	// The load cannot be answered now; give it time to fail at least once
	// (each try waits up to 5 s) before the servers return.
	time.Sleep(6 * time.Second)
	select {
	case err := <-got:
		t.Fatalf("Load with every server down returned %v before they were back", err)
	default:
	}
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() { defer wg.Done(); c.Restart(i) }() // each waits for the others to be ready
	}
	err := <-got
	wg.Wait()
	if err != nil {
		t.Fatalf("Load across the outage: %v", err)
	}
}
