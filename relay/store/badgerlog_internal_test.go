package store

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestBadgerLine(t *testing.T) {
	tests := []struct{ in, want string }{
		{"All 1 tables opened in 2ms\n", "All 1 tables opened in 2ms"},
		{"Lifetime L0 stalled for: 0s\n\nLevel 0 [ ]: NumTables: 00.\tSize: 0 B\n", "Lifetime L0 stalled for: 0s; Level 0 [ ]: NumTables: 00. Size: 0 B"},
		{"\n", ""},
	}
	for _, tt := range tests {
		if got := badgerLine(tt.in); got != tt.want {
			t.Errorf("badgerLine(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestBadgerLoggerLevels: Badger's info and warning lines are debug, its
// errors errors, and none shows a literal \n.
func TestBadgerLoggerLevels(t *testing.T) {
	var buf bytes.Buffer
	b := badgerLogger{slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	b.Infof("opened %d tables\n", 3)
	b.Warningf("block cache small\n")
	b.Debugf("noise\n")
	if buf.Len() != 0 {
		t.Errorf("at info level Badger logged %q", buf.String())
	}
	b.Errorf("disk failed:\n%s\n", "EIO")
	if got := buf.String(); !strings.Contains(got, `level=ERROR msg="disk failed:; EIO" component=badger`) || strings.Contains(got, `\n`) {
		t.Errorf("error line = %q", got)
	}
}
