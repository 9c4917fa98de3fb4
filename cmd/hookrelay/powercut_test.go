//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// powerCut is a FUSE file system over a backing directory that remembers,
// per file, how to undo every write since the file's last fsync. Cut,
// called once the file system is unmounted, undoes them in the backing
// directory: file contents are left as a power cut leaves them on a disk
// that kept exactly the data that was fsynced. Metadata is kept as it is
// (names, renames, sizes: what a journaling file system commits on its
// own within seconds), so the store sees its files, with the unsynced
// bytes in them gone.
type powerCut struct {
	backing string

	mu    sync.Mutex
	files map[string][]undoWrite // path relative to the root -> undo, oldest first
}

type undoWrite struct {
	off int64
	old []byte
}

// changing records that path is about to change in [off, off+n).
func (pc *powerCut) changing(path string, off, n int64) error {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	f, err := os.Open(filepath.Join(pc.backing, path))
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	// Past the end of the file, the old content is zeros.
	old := make([]byte, n)
	if end := min(off+n, fi.Size()); end > off {
		if _, err := f.ReadAt(old[:end-off], off); err != nil && !errors.Is(err, io.EOF) {
			return err
		}
	}
	pc.files[path] = append(pc.files[path], undoWrite{off: off, old: old})
	return nil
}

func (pc *powerCut) synced(path string) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	delete(pc.files, path)
}

func (pc *powerCut) renamed(from, to string) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	delete(pc.files, to)
	if u, ok := pc.files[from]; ok {
		pc.files[to] = u
		delete(pc.files, from)
	}
}

func (pc *powerCut) removed(path string) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	delete(pc.files, path)
}

// cut undoes every unsynced change in the backing directory and returns
// how many files it touched.
func (pc *powerCut) cut() (int, error) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	n := 0
	for path, undo := range pc.files {
		f, err := os.OpenFile(filepath.Join(pc.backing, path), os.O_RDWR, 0)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return n, err
		}
		for _, w := range slices.Backward(undo) {
			if _, err := f.WriteAt(w.old, w.off); err != nil {
				f.Close()
				return n, err
			}
		}
		if err := f.Close(); err != nil {
			return n, err
		}
		n++
	}
	pc.files = map[string][]undoWrite{}
	return n, nil
}

// cutNode is a loopback node that tells its powerCut about changes.
type cutNode struct {
	*fs.LoopbackNode
	pc *powerCut
}

var (
	_ fs.NodeWrapChilder = (*cutNode)(nil)
	_ fs.NodeWriter      = (*cutNode)(nil)
	_ fs.NodeFsyncer     = (*cutNode)(nil)
	_ fs.NodeCreater     = (*cutNode)(nil)
	_ fs.NodeOpener      = (*cutNode)(nil)
	_ fs.NodeRenamer     = (*cutNode)(nil)
	_ fs.NodeUnlinker    = (*cutNode)(nil)
)

func (n *cutNode) WrapChild(ctx context.Context, ops fs.InodeEmbedder) fs.InodeEmbedder {
	return &cutNode{LoopbackNode: ops.(*fs.LoopbackNode), pc: n.pc}
}

func (n *cutNode) rel() string { return n.EmbeddedInode().Path(nil) }

func (n *cutNode) child(name string) string { return filepath.Join(n.rel(), name) }

func (n *cutNode) Write(ctx context.Context, f fs.FileHandle, data []byte, off int64) (uint32, syscall.Errno) {
	if err := n.pc.changing(n.rel(), off, int64(len(data))); err != nil {
		return 0, fs.ToErrno(err)
	}
	return f.(fs.FileWriter).Write(ctx, data, off)
}

func (n *cutNode) Fsync(ctx context.Context, f fs.FileHandle, flags uint32) syscall.Errno {
	var errno syscall.Errno
	if fsy, ok := f.(fs.FileFsyncer); ok {
		errno = fsy.Fsync(ctx, flags)
	} else {
		errno = fs.ToErrno(syncPath(filepath.Join(n.pc.backing, n.rel())))
	}
	if errno == 0 {
		n.pc.synced(n.rel())
	}
	return errno
}

func syncPath(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

func (n *cutNode) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	inode, fh, fl, errno := n.LoopbackNode.Create(ctx, name, flags, mode, out)
	if errno != 0 {
		return inode, fh, fl, errno
	}
	return inode, &viaDaemon{fh}, fl, errno
}

func (n *cutNode) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	fh, fl, errno := n.LoopbackNode.Open(ctx, flags)
	if errno != 0 {
		return fh, fl, errno
	}
	return &viaDaemon{fh}, fl, errno
}

// viaDaemon is a loopback file without its passthrough fd: the kernel
// sends every write and fsync to the daemon instead of doing them on the
// backing file itself.
type viaDaemon struct{ f fs.FileHandle }

func (v *viaDaemon) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	return v.f.(fs.FileReader).Read(ctx, dest, off)
}

func (v *viaDaemon) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	return v.f.(fs.FileWriter).Write(ctx, data, off)
}

func (v *viaDaemon) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	return v.f.(fs.FileFsyncer).Fsync(ctx, flags)
}

func (v *viaDaemon) Flush(ctx context.Context) syscall.Errno {
	return v.f.(fs.FileFlusher).Flush(ctx)
}

func (v *viaDaemon) Release(ctx context.Context) syscall.Errno {
	return v.f.(fs.FileReleaser).Release(ctx)
}

func (v *viaDaemon) Getattr(ctx context.Context, out *fuse.AttrOut) syscall.Errno {
	return v.f.(fs.FileGetattrer).Getattr(ctx, out)
}

func (v *viaDaemon) Setattr(ctx context.Context, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return v.f.(fs.FileSetattrer).Setattr(ctx, in, out)
}

func (v *viaDaemon) Allocate(ctx context.Context, off uint64, size uint64, mode uint32) syscall.Errno {
	return v.f.(fs.FileAllocater).Allocate(ctx, off, size, mode)
}

func (v *viaDaemon) Lseek(ctx context.Context, off uint64, whence uint32) (uint64, syscall.Errno) {
	return v.f.(fs.FileLseeker).Lseek(ctx, off, whence)
}

func (n *cutNode) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	errno := n.LoopbackNode.Rename(ctx, name, newParent, newName, flags)
	if errno == 0 {
		n.pc.renamed(n.child(name), filepath.Join(newParent.EmbeddedInode().Path(nil), newName))
	}
	return errno
}

func (n *cutNode) Unlink(ctx context.Context, name string) syscall.Errno {
	errno := n.LoopbackNode.Unlink(ctx, name)
	if errno == 0 {
		n.pc.removed(n.child(name))
	}
	return errno
}

// mountPowerCut mounts a powerCut over backing at a new directory; it
// skips the test where FUSE cannot be mounted.
func mountPowerCut(t *testing.T, backing string) (*powerCut, *fuse.Server, string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the power-cut test mounts a FUSE file system: run as root")
	}
	if f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0); err != nil {
		t.Skipf("no FUSE here: %v", err)
	} else {
		f.Close()
	}
	pc := &powerCut{backing: backing, files: map[string][]undoWrite{}}
	root, err := fs.NewLoopbackRoot(backing)
	if err != nil {
		t.Fatal(err)
	}
	mnt := t.TempDir()
	srv, err := fs.Mount(mnt, &cutNode{LoopbackNode: root.(*fs.LoopbackNode), pc: pc}, &fs.Options{
		MountOptions: fuse.MountOptions{DirectMount: true, FsName: "powercut", Name: "powercut"},
	})
	if err != nil {
		t.Skipf("cannot mount FUSE here: %v", err)
	}
	t.Cleanup(func() { _ = srv.Unmount() })
	return pc, srv, mnt
}

// TestPowerCutLosesNothingAnsweredWithSync: webhooks answered 200 with
// storage.sync on survive a power cut (everything not fsynced is undone
// under the store); with sync off, the same cut loses them, which shows
// the cut is real.
func TestPowerCutLosesNothingAnsweredWithSync(t *testing.T) {
	for _, sync := range []bool{true, false} {
		t.Run(fmt.Sprint("sync-", sync), func(t *testing.T) {
			powerCutRun(t, sync)
		})
	}
}

func powerCutRun(t *testing.T, syncWrites bool) {
	const events = 50
	backing := t.TempDir()
	pc, srv, mnt := mountPowerCut(t, backing)
	env := cliEnv("SECRET=" + cliSecret)
	signer := cliSigner(t, cliSecret)
	client := &http.Client{Timeout: 10 * time.Second}

	p := cliServe(t, env, cliConfig(t, filepath.Join(mnt, "data"), "text", syncWrites))
	type sent struct {
		h    http.Header
		body []byte
		id   string
	}
	var acked []sent
	now := time.Now()
	for i := range events {
		body := fmt.Appendf(nil, `{"event":"video.completed","video_id":"cut-%d","created_at":%d,"data":{"pad":%q}}`, i, now.Unix(), fmt.Sprintf("%0300d", i))
		h, err := signer.Sign(body, now)
		if err != nil {
			t.Fatal(err)
		}
		status, out, err := cliPost(client, "http://"+p.addr+"/webhooks/sp", h, body)
		if err != nil || status != http.StatusOK || out["status"] != "accepted" {
			t.Fatalf("webhook %d: %d %v %v\n%s", i, status, out, err, p.Log())
		}
		acked = append(acked, sent{h, body, out["id"]})
	}
	p.kill(t) // SIGKILL: then the power goes
	client.CloseIdleConnections()
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; {
		if err = srv.Unmount(); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("unmount: %v", err)
	}
	touched, err := pc.cut()
	if err != nil {
		t.Fatalf("power cut: %v", err)
	}

	p2 := cliServe(t, env, cliConfig(t, filepath.Join(backing, "data"), "text", syncWrites))
	lost := 0
	for i, s := range acked {
		status, out, err := cliPost(client, "http://"+p2.addr+"/webhooks/sp", s.h, s.body)
		if err != nil || status != http.StatusOK {
			t.Fatalf("re-send %d after the cut: %d %v %v\n%s", i, status, out, err, p2.Log())
		}
		switch {
		case out["status"] == "accepted":
			lost++
		case out["id"] != s.id:
			t.Errorf("webhook %d: duplicate of %s after the cut, want %s", i, out["id"], s.id)
		}
	}
	if code := p2.stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("exit code after SIGTERM = %d, want 0\n%s", code, p2.Log())
	}
	t.Logf("storage.sync %v: %d webhooks answered 200, the cut undid unsynced writes in %d files, %d webhooks lost", syncWrites, len(acked), touched, lost)
	if syncWrites && lost > 0 {
		t.Errorf("with storage.sync on, %d of %d webhooks answered 200 were lost in the power cut", lost, len(acked))
	}
	if !syncWrites && lost == 0 {
		t.Errorf("with storage.sync off, the power cut lost none of %d webhooks: the cut did not cut", len(acked))
	}
}
