// Command barelimit is the floor hookrelay's ingest benchmark is measured
// against: the least work a webhook endpoint can do and still be honest.
//
// It answers POST requests on any path: it reads the body (up to
// server.max_body_bytes), checks one Sketchpen signature (HMAC-SHA256 over
// "<X-Sketchpen-Timestamp>.<body>", compared in constant time with the hex
// of "X-Sketchpen-Signature: sha256=<hex>") and answers
// 200 {"status":"accepted","id":"<unique>"}, or 401 on a bad signature.
// It parses no JSON, checks no timestamp window, de-duplicates nothing and
// stores nothing. Its HTTP server uses hookrelay's default server timeouts
// and limits (config.Default), so the difference to `hookrelay serve` is the
// work hookrelay does per webhook, not the server setup.
//
//	barelimit -listen 127.0.0.1:0 -secret whsec_...
//
// It logs one JSON line {"msg":"listening","listener":"public","addr":...}
// to stderr, like hookrelay with log.format json, and stops on SIGINT or
// SIGTERM. `go run ./cmd/benchrun` starts it; it is not part of hookrelay.
package main

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hookrelay/hookrelay/providers/sketchpen"
	"github.com/hookrelay/hookrelay/relay/config"
	"github.com/hookrelay/hookrelay/verify"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "listen on `ADDR`")
	secret := flag.String("secret", "", "Sketchpen signing `SECRET` (required)")
	flag.Parse()
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	if err := run(*listen, *secret, log); err != nil {
		log.Error("barelimit failed", "err", err)
		os.Exit(1)
	}
}

func run(listen, secret string, log *slog.Logger) error {
	if secret == "" {
		return errors.New("-secret is required")
	}
	h, err := newHandler(secret, config.Default().Server.MaxBodyBytes)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	c := config.Default().Server
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: c.ReadHeaderTimeout.D(),
		ReadTimeout:       c.ReadTimeout.D(),
		WriteTimeout:      c.WriteTimeout.D(),
		IdleTimeout:       c.IdleTimeout.D(),
		MaxHeaderBytes:    c.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	log.Info("listening", "listener", "public", "addr", ln.Addr().String())

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx)
	log.Info("stopped", "accepted", h.n.Load())
	return err
}

// handler verifies one Sketchpen signature per request.
type handler struct {
	key     []byte
	maxBody int64
	prefix  string        // random per process, so ids are unique across runs
	n       atomic.Uint64 // accepted requests, also the id counter
}

func newHandler(secret string, maxBody int64) (*handler, error) {
	var p [6]byte
	if _, err := rand.Read(p[:]); err != nil {
		return nil, err
	}
	return &handler{key: []byte(secret), maxBody: maxBody, prefix: "bare_" + hex.EncodeToString(p[:]) + "_"}, nil
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeJSON(w, http.StatusRequestEntityTooLarge, `{"error":"body too large"}`)
			return
		}
		writeJSON(w, http.StatusBadRequest, `{"error":"read body"}`)
		return
	}
	sigHex, ok := strings.CutPrefix(r.Header.Get(sketchpen.SignatureHeader), sketchpen.SignaturePrefix)
	ts := r.Header.Get(sketchpen.TimestampHeader)
	if !ok || ts == "" {
		writeJSON(w, http.StatusBadRequest, `{"error":"missing or malformed signature headers"}`)
		return
	}
	sig, err := hex.DecodeString(sigHex)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, `{"error":"signature is not hex"}`)
		return
	}
	if !hmac.Equal(verify.HMACSHA256(h.key, []byte(ts), []byte("."), body), sig) {
		writeJSON(w, http.StatusUnauthorized, `{"error":"signature mismatch"}`)
		return
	}
	id := h.prefix + strconv.FormatUint(h.n.Add(1), 10)
	writeJSON(w, http.StatusOK, fmt.Sprintf(`{"status":"accepted","id":%q}`, id))
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body+"\n")
}
