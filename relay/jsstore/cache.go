package jsstore

import (
	"sync"

	"github.com/hookrelay/hookrelay/relay/delivery"
	"github.com/hookrelay/hookrelay/relay/storage"
)

// cache holds what this Store wrote or read lately that a later step of a
// delivery can use instead of a round trip to the stream leader:
//
//   - events: the JSON and body of events ingested through this Store.
//     Both are written once and never change, so a hit is what a read
//     would return until the event's retention ends (then the store is
//     asked).
//   - queue: the sequence and due time of queue entries this Store wrote
//     (by ingest, RecordAttempt, Requeue).
//   - loaded: the delivery record (and its sequence) and event that
//     LoadDelivery read, for the RecordAttempt that follows.
//   - fresh: events ingested through this Store whose delivery record
//     no LoadDelivery has read yet: the first one takes the event's
//     initial deliveries (no record written) without reading; later ones
//     read. If another node wrote a record meanwhile (a replay), the
//     RecordAttempt that follows fails its compare-and-set and reads.
//
// queue and loaded are guesses: RecordAttempt's first try writes with them
// as the expected last subject sequences, so a stale guess (another node
// wrote meanwhile) is refused by the server like any lost compare-and-set,
// and the next try reads from the leader. Each part is bounded (entries,
// and bytes for events) and forgets the oldest first.
type cache struct {
	mu     sync.Mutex
	events fifo[cachedEvent]
	queue  fifo[queueState]
	loaded fifo[loadedDelivery]
	fresh  fifo[struct{}]
}

type cachedEvent struct {
	meta, raw []byte
}

type queueState struct {
	seq uint64
	ns  int64 // due, unix ns
}

type loadedDelivery struct {
	ev   *storage.Event
	ds   []delivery.Delivery
	seq  uint64 // of the delivery record, 0 if none
	qseq uint64 // of the queue entry (from queue), set by RecordAttempt
}

// Bounds of the cache.
const (
	cacheEvents     = 16384
	cacheEventBytes = 64 << 20
	cacheEntries    = 16384
)

func (c *cache) putEvent(id string, meta, raw []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events.put(id, cachedEvent{meta: meta, raw: raw}, len(meta)+len(raw)+len(id), cacheEvents, cacheEventBytes)
}

func (c *cache) event(id string) (cachedEvent, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.events.get(id)
}

func (c *cache) putQueue(target, id string, q queueState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.queue.put(target+"\x00"+id, q, 0, cacheEntries, 0)
}

func (c *cache) dropQueue(target, id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.queue.del(target + "\x00" + id)
}

func (c *cache) queued(target, id string) (queueState, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.queue.get(target + "\x00" + id)
}

func (c *cache) putLoaded(target, id string, l loadedDelivery) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.loaded.put(target+"\x00"+id, l, 0, cacheEntries, 0)
}

func (c *cache) putFresh(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fresh.put(id, struct{}{}, 0, cacheEntries, 0)
}

// takeFresh reports whether event id is fresh, and forgets it.
func (c *cache) takeFresh(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.fresh.get(id)
	c.fresh.del(id)
	return ok
}

// takeLoaded returns and forgets what LoadDelivery read for (target, id).
func (c *cache) takeLoaded(target, id string) (loadedDelivery, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := target + "\x00" + id
	l, ok := c.loaded.get(k)
	c.loaded.del(k)
	return l, ok
}

// fifo is a map bounded by entries and bytes that forgets the oldest
// entries first. The zero value is empty; it is not safe for concurrent use.
type fifo[V any] struct {
	m     map[string]*fifoEntry[V]
	q     []*fifoEntry[V] // oldest first; entries no longer in m are skipped
	bytes int
}

type fifoEntry[V any] struct {
	key  string
	v    V
	size int
}

// put sets key to v (size bytes), then forgets the oldest entries while
// there are more than maxLen or more than maxBytes bytes (0: no byte bound).
func (f *fifo[V]) put(key string, v V, size, maxLen, maxBytes int) {
	if f.m == nil {
		f.m = map[string]*fifoEntry[V]{}
	}
	f.del(key)
	e := &fifoEntry[V]{key: key, v: v, size: size}
	f.m[key] = e
	f.q = append(f.q, e)
	f.bytes += size
	for len(f.q) > 0 && (len(f.m) > maxLen || (maxBytes > 0 && f.bytes > maxBytes) || len(f.q) > 2*maxLen) {
		old := f.q[0]
		f.q[0] = nil
		f.q = f.q[1:]
		if f.m[old.key] == old {
			delete(f.m, old.key)
			f.bytes -= old.size
		}
	}
}

func (f *fifo[V]) get(key string) (V, bool) {
	if e, ok := f.m[key]; ok {
		return e.v, true
	}
	var zero V
	return zero, false
}

func (f *fifo[V]) del(key string) {
	if e, ok := f.m[key]; ok {
		delete(f.m, key)
		f.bytes -= e.size
	}
}
