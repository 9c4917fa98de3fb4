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
	"github.com/hookrelay/hookrelay/relay/config"
	"github.com/urfave/cli/v2"
)

func sinkCommand() *cli.Command {
	return &cli.Command{
		Name:  "sink",
		Usage: "a local target for development: verifies hookrelay's signature and prints each event",
		Description: "With --config and --target, the listen address and signing secret come from that target.\n" +
			exitCodes("stopped by SIGINT or SIGTERM", "bad flags, config or secret, or the address cannot be bound"),
		Flags: []cli.Flag{
			configFlag(),
			&cli.StringFlag{Name: "target", Usage: "with --config: play target `NAME` (its URL's host:port and signing_secret)"},
			&cli.StringFlag{Name: "listen", Value: "127.0.0.1:9000", Usage: "listen on `ADDR` (host:port)"},
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
	if c.NArg() > 0 {
		return fmt.Errorf("sink takes no arguments, not %q", c.Args().First())
	}
	h := &sinkHandler{json: c.Bool("json"), status: c.Int("status"), out: bufio.NewWriterSize(c.App.Writer, 64<<10), errOut: c.App.ErrWriter}
	listen, sec := c.String("listen"), c.String("secret")
	if name := c.String("target"); name != "" {
		addr, secret, err := sinkFromConfig(c, name)
		if err != nil {
			return err
		}
		if !c.IsSet("listen") {
			listen = addr
		}
		if !c.IsSet("secret") {
			sec = secret
		}
	}
	if sec != "" {
		// The same rule as a target's signing_secret in the config.
		if _, err := config.SigningKey(sec); err != nil {
			return fmt.Errorf("--secret: %w (a target's signing_secret, e.g. whsec_ZGV2LXNpbmstc2lnbmluZy1zZWNyZXQ=)", err)
		}
		v, err := standardwebhooks.New(providers.Common{Secrets: []providers.Secret{{Value: sec}}, Tolerance: 5 * time.Minute})
		if err != nil {
			return fmt.Errorf("--secret: %w", err)
		}
		h.verifier = v
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", listen, err)
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
