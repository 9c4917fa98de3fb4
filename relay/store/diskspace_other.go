//go:build !(linux || darwin || freebsd)

package store

import "errors"

// StatFS is the FreeSpaceFunc of the platform; free space cannot be read
// here, so the store does not watch it.
func StatFS(path string) (uint64, error) {
	return 0, errors.New("free space unknown on this platform")
}

// FilesystemSize is the size of the filesystem holding path; unknown here.
func FilesystemSize(path string) (uint64, error) {
	return 0, errors.New("filesystem size unknown on this platform")
}
