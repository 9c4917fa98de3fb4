package registry_test

import (
	"errors"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/providers"
	"github.com/hookrelay/hookrelay/providers/generichmac"
	"github.com/hookrelay/hookrelay/providers/standardwebhooks"
	"github.com/hookrelay/hookrelay/verify"
)

// TestGoldenVectors verifies every request signed by gen_vectors.py and
// checks the extracted event. The videovector vectors with path
// "canonical" verify only through verify.CanonicalJSON.
func TestGoldenVectors(t *testing.T) {
	for _, v := range loadVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			a := newAdapter(t, v.Provider, v.Options.config(t))
			h, body := v.header(), v.body(t)
			if err := a.Verify(h, body, v.now()); err != nil {
				t.Fatalf("Verify (%s path): %v", v.Path, err)
			}
			ev, err := a.Parse(h, body)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got, want := ev.Type, v.Expect.Type; got != want {
				t.Errorf("Type = %q, want %q", got, want)
			}
			if got, want := ev.Subject, v.Expect.Subject; got != want {
				t.Errorf("Subject = %q, want %q", got, want)
			}
			if got, want := ev.DedupeKey, v.Expect.DedupeKey; got != want {
				t.Errorf("DedupeKey = %q, want %q", got, want)
			}
			if got, want := ev.DeliveryID, v.Expect.DeliveryID; got != want {
				t.Errorf("DeliveryID = %q, want %q", got, want)
			}
			var want time.Time
			if v.Expect.Time != "" {
				if want, err = time.Parse(time.RFC3339Nano, v.Expect.Time); err != nil {
					t.Fatal(err)
				}
			}
			if !ev.Time.Equal(want) {
				t.Errorf("Time = %v, want %v", ev.Time, want)
			}

			src := providers.Source{Name: "test", Provider: v.Provider, Adapter: a}
			ev, err = src.Accept(nil, h, body, v.now())
			if err != nil {
				t.Fatalf("Accept: %v", err)
			}
			if got, want := ev.DedupeKey, v.Expect.AcceptDedupeKey; got != want {
				t.Errorf("Accept DedupeKey = %q, want %q", got, want)
			}
		})
	}
}

// request is what a tamper case starts from and modifies.
type request struct {
	h    http.Header
	body []byte
	now  time.Time
	cfg  config
}

type tamperCase struct {
	name   string
	modify func(r *request)
	want   error // nil: must still verify
}

// tamperCases derives the broken copies of v that must fail, with the
// sentinel each must wrap, plus a few changes that must not matter.
func tamperCases(t testing.TB, v vector) []tamperCase {
	t.Helper()
	tp := v.Tamper
	sigHeader := tp.Signature.Header
	setSig := func(f func(string) string) func(r *request) {
		return func(r *request) { r.h.Set(sigHeader, f(r.h.Get(sigHeader))) }
	}
	var cs []tamperCase
	add := func(name string, want error, modify func(r *request)) {
		cs = append(cs, tamperCase{name: name, modify: modify, want: want})
	}

	if tp.BodySigned {
		add("body-byte-flipped", verify.ErrNoValidSignature, func(r *request) { r.body[len(r.body)/2] ^= 0x01 })
		add("body-appended", verify.ErrNoValidSignature, func(r *request) { r.body = append(r.body, 'x') })
		if v.Provider == "videovector" {
			// Whitespace is not part of the canonical form.
			add("body-whitespace-appended", nil, func(r *request) { r.body = append(r.body, " \n"...) })
		} else {
			add("body-whitespace-appended", verify.ErrNoValidSignature, func(r *request) { r.body = append(r.body, " \n"...) })
		}
	} else {
		add("unsigned-body-changed", nil, func(r *request) { r.body[len(r.body)/2] ^= 0x01 })
	}
	add("wrong-secret", verify.ErrNoValidSignature, func(r *request) { r.cfg = v.WrongOptions.config(t) })
	add("signature-missing", verify.ErrMissingHeader, func(r *request) { r.h.Del(sigHeader) })
	add("signature-empty", verify.ErrMissingHeader, func(r *request) { r.h.Set(sigHeader, "") })

	switch tp.Signature.Kind {
	case "hex-prefixed", "hex", "hex-optional-prefix":
		add("signature-hex-digit-changed", verify.ErrNoValidSignature, setSig(flipLastHex))
		add("signature-bad-hex", verify.ErrMalformedHeader, setSig(func(s string) string { return s[:len(s)-2] + "zz" }))
		add("signature-truncated", verify.ErrMalformedHeader, setSig(func(s string) string { return s[:len(s)-2] }))
		add("signature-doubled", verify.ErrMalformedHeader, setSig(func(s string) string { return s + s[len(s)-64:] }))
		add("signature-uppercase", nil, setSig(func(s string) string {
			p, hex := splitHexPrefix(s)
			return p + strings.ToUpper(hex)
		}))
	}
	switch tp.Signature.Kind {
	case "hex-prefixed":
		add("signature-no-prefix", verify.ErrMalformedHeader, setSig(func(s string) string { _, hex := splitHexPrefix(s); return hex }))
		add("signature-other-prefix", verify.ErrMalformedHeader, setSig(func(s string) string { _, hex := splitHexPrefix(s); return "sha1=" + hex }))
	case "hex":
		add("signature-unexpected-prefix", verify.ErrMalformedHeader, setSig(func(s string) string { return "sha256=" + s }))
	case "hex-optional-prefix":
		add("signature-prefix-toggled", nil, setSig(func(s string) string {
			if p, hex := splitHexPrefix(s); p != "" {
				return hex
			}
			return "sha256=" + s
		}))
	case "base64":
		add("signature-base64-char-changed", verify.ErrNoValidSignature, setSig(func(s string) string {
			i := strings.IndexByte(s, '=') + 1 // after the "v1=" prefix
			return s[:i] + string(otherB64(s[i])) + s[i+1:]
		}))
		add("signature-not-base64", verify.ErrMalformedHeader, setSig(func(s string) string { return "v1=!!!!notbase64!!!!" }))
		add("signature-short", verify.ErrMalformedHeader, setSig(func(s string) string { return "v1=c2hvcnQ=" }))
		add("signature-no-prefix", verify.ErrMalformedHeader, setSig(func(s string) string { return strings.TrimPrefix(s, "v1=") }))
	case "v1":
		add("signature-base64-char-changed", verify.ErrNoValidSignature, setSig(func(s string) string {
			entries := strings.Fields(s)
			for i, e := range entries {
				if strings.HasPrefix(e, "v1,") {
					entries[i] = "v1," + string(otherB64(e[3])) + e[4:]
				}
			}
			return strings.Join(entries, " ")
		}))
		add("signature-only-other-versions", verify.ErrMalformedHeader, setSig(func(s string) string { return strings.ReplaceAll(s, "v1,", "v2,") }))
		add("signature-no-comma", verify.ErrMalformedHeader, setSig(func(s string) string { return "v1" }))
		add("signature-not-base64", verify.ErrMalformedHeader, setSig(func(s string) string { return "v1,!!!not base64!!!" }))
		add("signature-extra-entries", nil, setSig(func(s string) string { return "v1a,AAAA v1,Ym9ndXM= " + s + " v2,x" }))
	case "value":
		add("value-changed", verify.ErrNoValidSignature, setSig(func(s string) string { return s + "x" }))
		add("value-prefix", verify.ErrNoValidSignature, setSig(func(s string) string { return s[:len(s)-1] }))
		add("value-case", verify.ErrNoValidSignature, setSig(strings.ToUpper))
	}

	for _, name := range tp.SignedHeaders {
		add("signed-header-changed/"+name, verify.ErrNoValidSignature, func(r *request) { r.h.Set(name, changeDigit(r.h.Get(name))) })
	}
	for _, name := range tp.RequiredHeaders {
		add("missing/"+name, verify.ErrMissingHeader, func(r *request) { r.h.Del(name) })
	}
	if ts := tp.Timestamp; ts != nil {
		signed := time.Unix(ts.SignedAt, 0)
		window := time.Duration(ts.WindowS) * time.Second
		add("timestamp-stale", verify.ErrTooOld, func(r *request) { r.now = signed.Add(window + time.Second) })
		add("timestamp-future", verify.ErrTooNew, func(r *request) { r.now = signed.Add(-window - time.Second) })
		add("timestamp-oldest-accepted", nil, func(r *request) { r.now = signed.Add(window) })
		add("timestamp-newest-accepted", nil, func(r *request) { r.now = signed.Add(-window) })
		add("timestamp-malformed", verify.ErrMalformedHeader, func(r *request) { r.h.Set(ts.Header, "yesterday") })
		add("timestamp-negative", verify.ErrMalformedHeader, func(r *request) { r.h.Set(ts.Header, "-1") })
		if !containsHeader(tp.RequiredHeaders, ts.Header) {
			add("timestamp-optional-absent", nil, func(r *request) { r.h.Del(ts.Header) })
		}
	}
	if name := tp.WebhookIDHeader; name != "" {
		add("webhook-id-mismatch", verify.ErrWebhookIDMismatch, func(r *request) { r.h.Set(name, "wh_someone_else") })
		add("webhook-id-missing", verify.ErrWebhookIDMismatch, func(r *request) { r.h.Del(name) })
	}
	return cs
}

// TestTamperedVectors checks that every broken copy of a golden vector
// fails with the right sentinel and the right 400-or-401 class.
func TestTamperedVectors(t *testing.T) {
	for _, v := range loadVectors(t) {
		for _, c := range tamperCases(t, v) {
			t.Run(v.Name+"/"+c.name, func(t *testing.T) {
				err := runTampered(t, v, c)
				if c.want == nil {
					if err != nil {
						t.Fatalf("Verify: %v, want success", err)
					}
					return
				}
				if !errors.Is(err, c.want) {
					t.Fatalf("Verify: %v, want %v", err, c.want)
				}
				wantBad := c.want == verify.ErrMissingHeader || c.want == verify.ErrMalformedHeader
				if got := verify.IsBadRequest(err); got != wantBad {
					t.Errorf("IsBadRequest(%v) = %v, want %v", err, got, wantBad)
				}
			})
		}
	}
}

func runTampered(t testing.TB, v vector, c tamperCase) error {
	t.Helper()
	r := &request{h: v.header(), body: v.body(t), now: v.now(), cfg: v.Options.config(t)}
	c.modify(r)
	return newAdapter(t, v.Provider, r.cfg).Verify(r.h, r.body, r.now)
}

// TestParseRejectsNonJSON: a verified request whose body is not a JSON
// object is a bad request.
func TestParseRejectsNonJSON(t *testing.T) {
	seen := map[string]bool{}
	for _, v := range loadVectors(t) {
		if seen[v.Provider] {
			continue
		}
		seen[v.Provider] = true
		a := newAdapter(t, v.Provider, v.Options.config(t))
		for _, body := range []string{"", "not json", "[1,2]", `"s"`, `{"a":1} {"b":2}`, `{"a":1}]`, `{"a":`} {
			t.Run(v.Provider+"/"+body, func(t *testing.T) {
				_, err := a.Parse(v.header(), []byte(body))
				if !errors.Is(err, verify.ErrInvalidJSON) {
					t.Fatalf("Parse(%q) = %v, want ErrInvalidJSON", body, err)
				}
				if !verify.IsBadRequest(err) {
					t.Errorf("IsBadRequest(%v) = false", err)
				}
			})
		}
	}
}

var (
	longHex    = regexp.MustCompile(`[0-9a-fA-F]{32,}`)
	longBase64 = regexp.MustCompile(`[A-Za-z0-9+/_-]{40,}`)
)

// TestErrorsNeverLeakSecrets collects the error of every failure above and
// of bad constructor calls, and checks that none contains a secret, a
// callback value, a signature from a vector, or anything shaped like a
// computed signature.
func TestErrorsNeverLeakSecrets(t *testing.T) {
	var errs []error
	secrets := map[string]bool{}
	sigs := map[string]bool{}
	for _, v := range loadVectors(t) {
		for _, o := range []vectorOptions{v.Options, v.WrongOptions} {
			for _, s := range o.Secrets {
				secrets[s] = true
				secrets[strings.TrimPrefix(s, verify.WebhookSecretPrefix)] = true
			}
			if o.Value != "" {
				secrets[o.Value] = true
			}
		}
		for _, f := range strings.Fields(v.Headers[v.Tamper.Signature.Header]) {
			_, f = splitHexPrefix(f)
			f = strings.TrimPrefix(strings.TrimPrefix(f, "v1,"), "v1=")
			sigs[f], sigs[strings.ToLower(f)] = true, true
		}
		for _, c := range tamperCases(t, v) {
			if c.want != nil {
				errs = append(errs, runTampered(t, v, c))
			}
		}
	}
	for _, c := range badOptions() {
		_, err := build(t, c.provider, c.common, c.opts)
		errs = append(errs, err)
		for _, s := range c.common.Secrets {
			secrets[s.Value] = true
		}
		if v := c.opts["value"]; v != "" {
			secrets[v] = true
		}
	}
	if len(errs) < 100 {
		t.Fatalf("only %d errors collected", len(errs))
	}
	for _, err := range errs {
		if err == nil {
			t.Fatal("nil error collected")
		}
		msg := err.Error()
		for s := range secrets {
			if len(s) >= 4 && strings.Contains(msg, s) {
				t.Errorf("error %q contains secret %q", msg, s)
			}
		}
		for s := range sigs {
			if s != "" && strings.Contains(msg, s) {
				t.Errorf("error %q contains signature %q", msg, s)
			}
		}
		if m := longHex.FindString(msg); m != "" {
			t.Errorf("error %q contains a hex run %q", msg, m)
		}
		if m := longBase64.FindString(msg); m != "" {
			t.Errorf("error %q contains a base64 run %q", msg, m)
		}
	}
}

// TestSignMatchesVectors: each adapter's signer, keyed with one configured
// secret at the vector's signing time, reproduces the Python signature.
// Vectors whose timestamp header is not unix seconds are skipped (the
// signers send unix seconds).
func TestSignMatchesVectors(t *testing.T) {
	for _, v := range loadVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			at := v.now()
			if ts := v.Tamper.Timestamp; ts != nil {
				if v.Headers[ts.Header] != strconv.FormatInt(ts.SignedAt, 10) && v.Provider != "shortkit" {
					t.Skip("timestamp header is not unix seconds")
				}
				at = time.Unix(ts.SignedAt, 0)
			}
			secrets := v.Options.Secrets
			if len(secrets) == 0 {
				secrets = []string{""} // callback-header: no secrets
			}
			want := v.Headers[v.Tamper.Signature.Header]
			matched := false
			for _, s := range secrets {
				cfg := v.Options.config(t)
				if s != "" {
					cfg.common.Secrets = secretsOf(s)
				}
				got := signWith(t, newAdapter(t, v.Provider, cfg), v, at).Get(v.Tamper.Signature.Header)
				matched = matched || sameSignature(v.Tamper.Signature.Kind, got, want)
			}
			if !matched {
				t.Fatalf("no configured secret reproduces %s: %q", v.Tamper.Signature.Header, want)
			}
		})
	}
}

func signWith(t testing.TB, a providers.Adapter, v vector, at time.Time) http.Header {
	t.Helper()
	var (
		h   http.Header
		err error
	)
	switch a := a.(type) {
	case *standardwebhooks.Adapter:
		h, err = a.SignWithID(v.Headers["webhook-id"], v.body(t), at)
	case *generichmac.Adapter:
		h, err = a.SignWith(v.header(), v.body(t), at)
	default:
		h, err = a.Sign(v.body(t), at)
	}
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	return h
}

// sameSignature compares a signer's header with a vector's: hex in any case
// and with an optional sha256= prefix, a v1 entry among the vector's list.
func sameSignature(kind, got, want string) bool {
	switch kind {
	case "hex-prefixed", "hex", "hex-optional-prefix":
		_, g := splitHexPrefix(got)
		_, w := splitHexPrefix(want)
		return g != "" && strings.EqualFold(g, w)
	case "v1":
		return got != "" && slices.Contains(strings.Fields(want), got)
	}
	return got == want
}

func splitHexPrefix(s string) (prefix, hex string) {
	if len(s) > 7 && strings.EqualFold(s[:7], "sha256=") {
		return s[:7], s[7:]
	}
	return "", s
}

func flipLastHex(s string) string {
	c := s[len(s)-1]
	r := byte('0')
	if c == '0' {
		r = '1'
	}
	return s[:len(s)-1] + string(r)
}

func otherB64(c byte) byte {
	if c == 'A' {
		return 'B'
	}
	return 'A'
}

// changeDigit changes the last digit of s (or appends one), keeping a
// timestamp or id well-formed.
func changeDigit(s string) string {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] >= '0' && s[i] <= '9' {
			return s[:i] + string('0'+(s[i]-'0'+1)%10) + s[i+1:]
		}
	}
	return s + "1"
}

func containsHeader(list []string, s string) bool {
	for _, x := range list {
		if http.CanonicalHeaderKey(x) == http.CanonicalHeaderKey(s) {
			return true
		}
	}
	return false
}
