package verify

import (
	"strconv"
	"strings"
	"time"
)

// CheckWindow returns ErrTooOld if ts is more than tolerance before now and
// ErrTooNew if it is more than tolerance after now. A tolerance of zero or
// less disables the check.
func CheckWindow(ts, now time.Time, tolerance time.Duration) error {
	if tolerance <= 0 {
		return nil
	}
	d := now.Sub(ts)
	switch {
	case d > tolerance:
		return ErrTooOld
	case d < -tolerance:
		return ErrTooNew
	}
	return nil
}

// ParseTimestamp parses a timestamp header value: unix seconds (the usual
// form), or RFC 3339 / ISO 8601 when allowISO is true. header names the
// header in the returned error.
func ParseTimestamp(header, value string, allowISO bool) (time.Time, error) {
	value = strings.TrimSpace(value)
	if value == "" {
		return time.Time{}, Missing(header)
	}
	if n, err := strconv.ParseInt(value, 10, 64); err == nil {
		if n < 0 || n > 1<<40 {
			return time.Time{}, Malformed(header)
		}
		return time.Unix(n, 0), nil
	}
	if allowISO {
		if t, ok := ParseISO8601(value); ok {
			return t, nil
		}
	}
	return time.Time{}, Malformed(header)
}

// ParseISO8601 parses the ISO 8601 forms providers send: RFC 3339 with or
// without fractional seconds, and a zone-less date-time taken as UTC.
func ParseISO8601(s string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02T15:04:05.999999999Z0700"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}
