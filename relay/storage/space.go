package storage

import "fmt"

// ErrLowSpace wraps ErrUnavailable: the filesystem under the store is
// nearly full, so it takes no new events (the HTTP layer answers 503).
// Errors about it are *LowSpaceError values carrying the figures.
var ErrLowSpace = fmt.Errorf("%w: disk nearly full", ErrUnavailable)

// LowSpaceError reports too little free space under the store.
type LowSpaceError struct {
	Path string `json:"path"`           // the store directory
	Free uint64 `json:"free_bytes"`     // bytes available on its filesystem
	Min  uint64 `json:"min_free_bytes"` // the configured minimum (storage.min_free_bytes)
}

// Error gives the figures: "disk nearly full: 12.0 MiB free on the
// filesystem of PATH, storage.min_free_bytes is 256.0 MiB".
func (e *LowSpaceError) Error() string {
	return fmt.Sprintf("disk nearly full: %s free on the filesystem of %s, storage.min_free_bytes is %s",
		FormatBytes(e.Free), e.Path, FormatBytes(e.Min))
}

// Unwrap returns ErrLowSpace (which wraps ErrUnavailable).
func (e *LowSpaceError) Unwrap() error { return ErrLowSpace }

// FormatBytes renders n in binary units ("64.0 MiB").
func FormatBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}
