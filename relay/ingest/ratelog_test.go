package ingest

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestRejectLogRateLimited: per source and reason the first burst
// rejections of a period are logged, the rest counted into one summary
// line when the period ends; other keys have their own burst; unknown
// source names share one key, so made-up names cannot multiply the lines.
func TestRejectLogRateLimited(t *testing.T) {
	var buf lockedBuffer
	l := newRejectLog(slog.New(slog.NewTextHandler(&buf, nil)), 3, 400*time.Millisecond, time.Now)
	for i := range 10 {
		l.reject("sp", OutcomeBadSig, true, "n", i)
	}
	l.reject("sp", OutcomeTimestamp, true)
	for i := range 50 {
		l.reject(fmt.Sprint("made-up-", i), outcomeNoSource, false)
	}
	if got := l.size(); got != 3 {
		t.Errorf("keys = %d, want 3 (unknown names share one)", got)
	}
	count := func(sub string) int { return strings.Count(buf.String(), sub) }
	if got, want := count("msg=\"webhook rejected\" source=sp n="), 3; got != want {
		t.Errorf("signature lines = %d, want %d:\n%s", got, want, buf.String())
	}
	if got, want := count("outcome=rejected_timestamp"), 1; got != want {
		t.Errorf("timestamp lines = %d, want %d", got, want)
	}
	if got, want := count("outcome=rejected_unknown_source"), 3; got != want {
		t.Errorf("unknown-source lines = %d, want %d", got, want)
	}
	deadline := time.Now().Add(5 * time.Second)
	for count("webhook rejections not logged") < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	out := buf.String()
	for _, want := range []string{
		`msg="webhook rejections not logged" source=sp outcome=rejected_signature count=7`,
		`msg="webhook rejections not logged" source=* outcome=rejected_unknown_source count=47`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	// A new period logs again.
	l.reject("sp", OutcomeBadSig, true)
	if got, want := count("source=sp outcome=rejected_signature count=7"), 1; got != want {
		t.Errorf("summary lines = %d, want %d", got, want)
	}
	if got, want := count("msg=\"webhook rejected\" source=sp outcome=rejected_signature"), 1; got != want {
		t.Errorf("after the period: %d lines, want %d", got, want)
	}
}
