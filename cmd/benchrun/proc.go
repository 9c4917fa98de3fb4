//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is a child process in its own process group, so that stopping it
// also stops anything it started. Its stderr (and stdout, unless redirected)
// goes to a log file and is scanned for "listening" lines.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *lineWriter
	done chan struct{} // closed when the process has exited
	err  error         // exit error, valid after done
}

// procs tracks every child so that killAll can stop the ones still running
// whatever happens to the benchmark.
type procs struct {
	mu   sync.Mutex
	list []*proc
}

// start runs argv with its stderr in logPath. stdout goes to stdout, or to
// the log file when stdout is nil.
func (ps *procs) start(name string, argv []string, dir, logPath string, stdout io.Writer) (*proc, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	lw := &lineWriter{w: f, addrs: map[string]string{}}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.SysProcAttr = sysProcAttr()
	cmd.Stderr = lw
	cmd.Stdout = lw
	if stdout != nil {
		cmd.Stdout = stdout
	}
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, out: lw, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	ps.mu.Lock()
	ps.list = append(ps.list, p)
	ps.mu.Unlock()
	return p, nil
}

// killAll stops every child that is still running: SIGTERM to its process
// group, SIGKILL after grace.
func (ps *procs) killAll(grace time.Duration) {
	ps.mu.Lock()
	list := append([]*proc(nil), ps.list...)
	ps.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range list {
		wg.Add(1)
		go func() { defer wg.Done(); p.stop(grace) }()
	}
	wg.Wait()
}

// pid returns the process id.
func (p *proc) pid() int { return p.cmd.Process.Pid }

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the process group, then SIGKILL after grace, and
// waits (bounded) for the process to end.
func (p *proc) stop(grace time.Duration) {
	if p.exited() {
		// Children of the process may still be around.
		_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
		return
	}
	_ = syscall.Kill(-p.pid(), syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
	}
	_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
	}
}

// wait waits for the process to exit, killing its group when ctx ends or
// after timeout.
func (p *proc) wait(ctx context.Context, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		p.stop(2 * time.Second)
		return ctx.Err()
	case <-t.C:
		p.stop(2 * time.Second)
		return fmt.Errorf("%s: no result after %s, killed", p.name, timeout)
	}
}

// waitAddr waits until the process logs that listener is listening and
// returns its address.
func (p *proc) waitAddr(ctx context.Context, listener string, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		if a := p.out.addr(listener); a != "" {
			return a, nil
		}
		if p.exited() {
			return "", fmt.Errorf("%s exited before listening (%v); last output:\n%s", p.name, p.err, p.out.tail())
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("%s: no %q listener after %s; last output:\n%s", p.name, listener, timeout, p.out.tail())
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

var _ io.Writer = (*lineWriter)(nil)

// lineWriter copies output to w and remembers the addresses of "listening"
// lines: hookrelay's and barelimit's JSON log lines
// {"msg":"listening","listener":L,"addr":A}, and the sink's
// "sink listening on http://A ..." (as listener "sink").
type lineWriter struct {
	mu    sync.Mutex
	w     io.Writer
	buf   []byte
	last  []string // the last lines, for error messages
	addrs map[string]string
}

func (l *lineWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = l.w.Write(b)
	l.buf = append(l.buf, b...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		l.line(string(l.buf[:i]))
		l.buf = l.buf[i+1:]
	}
	if len(l.buf) > 64<<10 { // a very long line: not one we look for
		l.buf = l.buf[:0]
	}
	return len(b), nil
}

func (l *lineWriter) line(s string) {
	if len(l.last) == 20 {
		l.last = l.last[1:]
	}
	if len(s) > 500 {
		s = s[:500] + "..."
	}
	l.last = append(l.last, s)
	if strings.HasPrefix(s, "{") {
		var m struct{ Msg, Listener, Addr string }
		if json.Unmarshal([]byte(s), &m) == nil && m.Msg == "listening" && m.Addr != "" {
			l.addrs[m.Listener] = m.Addr
		}
		return
	}
	if rest, ok := strings.CutPrefix(s, "sink listening on http://"); ok {
		l.addrs["sink"], _, _ = strings.Cut(rest, " ")
	}
}

func (l *lineWriter) addr(listener string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.addrs[listener]
}

func (l *lineWriter) tail() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.last, "\n")
}

// procStatus returns a field of /proc/<pid>/status in bytes ("VmHWM",
// "VmRSS").
func procStatus(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		v, ok := strings.CutPrefix(line, field+":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("%s: unexpected %q", field, line)
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		return n << 10, err
	}
	return 0, errors.New(field + " not in /proc status")
}

// resetPeak resets the process's VmHWM to its current RSS (Linux 4.0+:
// "echo 5 > /proc/<pid>/clear_refs"). It reports false when not possible, in
// which case VmHWM stays the peak since the process started.
func resetPeak(pid int) bool {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0) == nil
}
