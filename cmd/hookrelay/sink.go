package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/hookrelay/hookrelay/providers"
	"github.com/hookrelay/hookrelay/providers/standardwebhooks"
	"github.com/urfave/cli/v2"
)

func sinkCommand() *cli.Command {
	return &cli.Command{
		Name:  "sink",
		Usage: "a local target for development: verifies hookrelay's signature and prints each event",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "listen", Value: "127.0.0.1:9000", Usage: "listen on `ADDR`"},
			&cli.StringFlag{Name: "secret", Usage: "verify signatures with `whsec_...` (the target's signing_secret)", EnvVars: []string{"HOOKRELAY_SINK_SECRET"}},
			&cli.BoolFlag{Name: "json", Usage: `print one JSON line per delivery: {"received_at","attempt","verified","event"}`},
			&cli.IntFlag{Name: "status", Value: http.StatusOK, Usage: "answer with HTTP `CODE` (simulate a failing target)"},
		},
		Action: sink,
	}
}

// sinkHandler verifies and prints deliveries.
type sinkHandler struct {
	verifier providers.Provider // nil: no verification
	json     bool
	status   int
	mu       sync.Mutex
	out      *bufio.Writer
	errOut   io.Writer // rejections, so --json output stays JSON
}

func (s *sinkHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 16<<20))
	received := time.Now()
	if err != nil {
		http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
		return
	}
	verified := "unsigned"
	if s.verifier != nil {
		if err := s.verifier.Verify(r.Header, body, time.Now()); err != nil {
			s.mu.Lock()
			fmt.Fprintf(s.errOut, "%s REJECTED %q: %v\n", time.Now().Format("15:04:05.000"), r.Header.Get("webhook-id"), err)
			s.mu.Unlock()
			http.Error(w, "signature: "+err.Error(), http.StatusUnauthorized)
			return
		}
		verified = "signature ok"
	}
	var ev struct {
		ID, Type, Source, Subject, Time string
		Replay                          bool
	}
	if err := json.Unmarshal(body, &ev); err != nil {
		http.Error(w, "body is not a CloudEvent JSON object", http.StatusBadRequest)
		return
	}
	s.print(func(out *bufio.Writer) {
		if s.json {
			fmt.Fprintf(out, `{"received_at":%q,"attempt":%q,"verified":%t,"event":%s}`+"\n",
				received.Format(time.RFC3339Nano), r.Header.Get("Hookrelay-Attempt"), s.verifier != nil, compactJSON(body))
			return
		}
		replay := ""
		if ev.Replay {
			replay = " [replay]"
		}
		fmt.Fprintf(out, "%s %s id=%s source=%s subject=%s attempt=%s (%s)%s\n", time.Now().Format("15:04:05.000"),
			ev.Type, ev.ID, ev.Source, ev.Subject, r.Header.Get("Hookrelay-Attempt"), verified, replay)
	})
	w.WriteHeader(s.status)
}

func (s *sinkHandler) print(f func(*bufio.Writer)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s.out)
	_ = s.out.Flush()
}

func compactJSON(b []byte) []byte {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return b
	}
	return buf.Bytes()
}

func sink(c *cli.Context) error {
	h := &sinkHandler{json: c.Bool("json"), status: c.Int("status"), out: bufio.NewWriterSize(c.App.Writer, 64<<10), errOut: c.App.ErrWriter}
	if sec := c.String("secret"); sec != "" {
		v, err := standardwebhooks.New(providers.Common{Secrets: []providers.Secret{{Value: sec}}, Tolerance: 5 * time.Minute})
		if err != nil {
			return fmt.Errorf("--secret: %w", err)
		}
		h.verifier = v
	}
	ln, err := net.Listen("tcp", c.String("listen"))
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
	fmt.Fprintf(c.App.ErrWriter, "sink listening on http://%s (signature check: %v)\n", ln.Addr(), h.verifier != nil)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-sigs:
		return srv.Close()
	case <-c.Context.Done():
		return srv.Close()
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	}
}
