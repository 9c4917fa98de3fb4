package storage

import (
	"crypto/rand"
	"encoding/binary"
	"sync"
	"time"
)

// IDGen makes time-sortable event ids in the ULID layout: 48 bits of unix
// milliseconds and 80 random bits, in Crockford base32 (26 characters). Ids
// made by one generator are strictly increasing, even within a millisecond;
// ids of different nodes differ by their random bits. Every store
// implementation uses it, so ids look alike whatever holds them. The zero
// value is ready to use.
type IDGen struct {
	mu   sync.Mutex
	last [16]byte
}

const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// New returns a new id for an event received at now.
func (g *IDGen) New(now time.Time) string {
	var b [16]byte
	ms := uint64(now.UnixMilli())
	g.mu.Lock()
	lastMS := binary.BigEndian.Uint64(append([]byte{0, 0}, g.last[:6]...))
	if ms <= lastMS {
		// Same (or earlier) millisecond: increment the previous id.
		b = g.last
		for i := 15; i >= 0; i-- {
			b[i]++
			if b[i] != 0 {
				break
			}
		}
	} else {
		binary.BigEndian.PutUint16(b[0:2], uint16(ms>>32))
		binary.BigEndian.PutUint32(b[2:6], uint32(ms))
		_, _ = rand.Read(b[6:])
		b[6] &= 0x7f // leave room to increment within the millisecond
	}
	g.last = b
	g.mu.Unlock()
	return encodeID(b)
}

func encodeID(b [16]byte) string {
	hi := binary.BigEndian.Uint64(b[0:8])
	lo := binary.BigEndian.Uint64(b[8:16])
	var out [26]byte
	for i := 25; i >= 0; i-- {
		out[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(out[:])
}

// IDAt returns the smallest id that a generator could make at t: ids made
// at or after t sort at or after it. Used for time-range scans.
func IDAt(t time.Time) string {
	var b [16]byte
	ms := uint64(t.UnixMilli())
	binary.BigEndian.PutUint16(b[0:2], uint16(ms>>32))
	binary.BigEndian.PutUint32(b[2:6], uint32(ms))
	return encodeID(b)
}
