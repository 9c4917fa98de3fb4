//go:build unix

package relay

import (
	"errors"
	"syscall"
)

// processAlive reports whether pid is a running process on this host.
func processAlive(pid int) bool {
	if pid <= 0 {
		return true // unknown: not provably dead
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
