package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrLocked is wrapped by Open when another process holds the store
// (Badger allows one process per directory).
var ErrLocked = errors.New("another process holds the store")

// ErrNoStore is wrapped by Open with Options.MustExist when there is no
// store at the path.
var ErrNoStore = errors.New("no store")

// LockedError says which process holds the store, when it can tell.
type LockedError struct {
	Path string
	PID  int // 0 when unknown
}

// Error names the store and the holder.
func (e *LockedError) Error() string {
	if e.PID > 0 {
		return fmt.Sprintf("another hookrelay (pid %d) holds the store at %s", e.PID, e.Path)
	}
	return fmt.Sprintf("another process holds the store at %s", e.Path)
}

// Is makes errors.Is(err, ErrLocked) true.
func (e *LockedError) Is(target error) bool { return target == ErrLocked }

const lockFile = "hookrelay.lock"

// lockDir takes an exclusive advisory lock on dir's lock file (released
// by the kernel when the process dies) and writes this process's pid in
// it. It returns the file, to close on Close.
func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open store lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			b, _ := os.ReadFile(path)
			pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
			return nil, &LockedError{Path: dir, PID: pid}
		}
		return nil, fmt.Errorf("lock store: %w", err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}

// hasStore reports whether dir holds a Badger store.
func hasStore(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "MANIFEST"))
	return err == nil
}
