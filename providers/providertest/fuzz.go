package providertest

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hookrelay/hookrelay/providers"
	"github.com/hookrelay/hookrelay/verify"
)

// FuzzRoles names the headers FuzzVerify replaces in vector v: the
// signature, the timestamp ("" if none) and one more header the adapter
// reads. gen_vectors.py (fuzz_roles) picks the same three when it writes the
// seeds in each provider package's testdata/fuzz/FuzzVerify.
func FuzzRoles(v Vector) (sig, ts, third string) {
	tp := v.Tamper
	sig = tp.Signature.Header
	if tp.Timestamp != nil {
		ts = tp.Timestamp.Header
	}
	third = "X-Fuzz-Extra"
	for _, h := range append(append(append([]string{}, tp.SignedHeaders...), tp.RequiredHeaders...), tp.WebhookIDHeader) {
		if h != "" && h != sig && h != ts {
			return sig, ts, h
		}
	}
	return sig, ts, third
}

// FuzzVerify feeds the adapters of provider (as configured by its golden
// vectors; the fuzzed index picks one, modulo their number) fuzzed
// signature, timestamp and id headers and bodies. Each seed is a golden
// vector, so mutations start from requests that verify. Verify must never
// panic, must fail only with a verify sentinel that leaks no secret, and a
// request it accepts must parse or fail with ErrInvalidJSON.
func FuzzVerify(f *testing.F, provider string) {
	vectors := LoadVectors(f, provider)
	type setup struct {
		v       Vector
		a       providers.Adapter
		secrets []string
	}
	setups := make([]setup, len(vectors))
	for i, v := range vectors {
		s := setup{v: v, a: NewAdapter(f, v.Provider, v.Options.Config(f)), secrets: v.Options.Secrets}
		if v.Options.Value != "" {
			s.secrets = append(s.secrets, v.Options.Value)
		}
		setups[i] = s
	}
	sentinels := []error{verify.ErrMissingHeader, verify.ErrMalformedHeader, verify.ErrNoValidSignature,
		verify.ErrTooOld, verify.ErrTooNew, verify.ErrWebhookIDMismatch}

	f.Fuzz(func(t *testing.T, idx uint16, sig, ts, third string, body []byte) {
		s := setups[int(idx)%len(setups)]
		h := s.v.Header()
		sigName, tsName, thirdName := FuzzRoles(s.v)
		for name, val := range map[string]string{sigName: sig, tsName: ts, thirdName: third} {
			if name != "" {
				h[http.CanonicalHeaderKey(name)] = []string{val}
			}
		}
		err := s.a.Verify(h, body, s.v.Now())
		if err != nil {
			known := false
			for _, e := range sentinels {
				known = known || errors.Is(err, e)
			}
			if !known {
				t.Fatalf("Verify: error %v wraps no verify sentinel", err)
			}
			for _, secret := range s.secrets {
				if strings.Contains(err.Error(), secret) {
					t.Fatalf("Verify: error %q contains a secret", err)
				}
			}
			return
		}
		if _, err := s.a.Parse(h, body); err != nil && !errors.Is(err, verify.ErrInvalidJSON) {
			t.Fatalf("Parse: %v, want nil or ErrInvalidJSON", err)
		}
		src := providers.Source{Name: "fuzz", Provider: s.v.Provider, Adapter: s.a}
		if ev, err := src.Accept("", h, body, s.v.Now()); err == nil && ev.DedupeKey == "" {
			t.Fatal("Accept: empty dedupe key")
		}
	})
}

// FuzzSeeds checks the seeds gen_vectors.py wrote to the package's
// testdata/fuzz/FuzzVerify: one per vector of provider, named after it,
// whose index picks that vector in FuzzVerify.
func FuzzSeeds(t *testing.T, provider string) {
	vectors := LoadVectors(t, provider)
	for i, v := range vectors {
		name := filepath.Join("testdata", "fuzz", "FuzzVerify", "vector-"+strings.ReplaceAll(v.Name, "/", "-"))
		raw, err := os.ReadFile(name)
		if err != nil {
			t.Errorf("vector %s: %v", v.Name, err)
			continue
		}
		lines := strings.Split(string(raw), "\n")
		if len(lines) < 2 || lines[0] != "go test fuzz v1" || lines[1] != fmt.Sprintf("uint16(%d)", i) {
			t.Errorf("%s: starts %q, want the corpus header and uint16(%d)", name, lines[:min(2, len(lines))], i)
		}
	}
	seeds, err := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzVerify", "vector-*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(seeds) != len(vectors) {
		t.Errorf("%d vector seeds, want one per vector (%d)", len(seeds), len(vectors))
	}
}
