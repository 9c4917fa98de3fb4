package store

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
)

// line logs one of Badger's printf-style lines at level, cleaned by
// badgerLine, unless the logger discards that level.
func (b badgerLogger) line(level slog.Level, format string, args []any) {
	if b.l == nil || !b.l.Enabled(context.Background(), level) {
		return
	}
	b.l.Log(context.Background(), level, badgerLine(fmt.Sprintf(format, args...)), "component", "badger")
}

// badgerLine makes a log message of a Badger line: Badger ends its lines
// with "\n" and sometimes spreads one over several, which a text or JSON
// handler would show as literal "\n"s. Lines are trimmed and joined with
// "; ", and runs of spaces or tabs become one space.
func badgerLine(s string) string {
	parts := strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' })
	out := parts[:0]
	for _, p := range parts {
		if p = strings.Join(strings.Fields(p), " "); p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, "; ")
}
