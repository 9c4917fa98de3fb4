//go:build linux || darwin || freebsd

package store

import "syscall"

// StatFS is the FreeSpaceFunc of the platform: statfs(2) f_bavail times
// f_bsize, the space unprivileged writers may still use.
func StatFS(path string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, err
	}
	return uint64(st.Bavail) * uint64(st.Bsize), nil
}

// FilesystemSize is the size of the filesystem holding path: statfs(2)
// f_blocks times f_bsize.
func FilesystemSize(path string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, err
	}
	return uint64(st.Blocks) * uint64(st.Bsize), nil
}
