package providertest

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/providers"
	"github.com/hookrelay/hookrelay/verify"
)

// GoldenVectors verifies every request of provider signed by
// gen_vectors.py and checks the extracted event. The videovector vectors
// with path "canonical" verify only through verify.CanonicalJSON.
func GoldenVectors(t *testing.T, provider string) {
	for _, v := range LoadVectors(t, provider) {
		t.Run(v.Name, func(t *testing.T) {
			a := NewAdapter(t, v.Provider, v.Options.Config(t))
			h, body := v.Header(), v.DecodedBody(t)
			if err := a.Verify(h, body, v.Now()); err != nil {
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
			ev, err = src.Accept("", h, body, v.Now())
			if err != nil {
				t.Fatalf("Accept: %v", err)
			}
			if got, want := ev.DedupeKey, v.Expect.AcceptDedupeKey; got != want {
				t.Errorf("Accept DedupeKey = %q, want %q", got, want)
			}
		})
	}
}

// Request is what a tamper case starts from and modifies.
type Request struct {
	H    http.Header
	Body []byte
	Now  time.Time
	Cfg  Config
}

// TamperCase is one change to a golden vector's request.
type TamperCase struct {
	Name   string
	Modify func(r *Request)
	Want   error // nil: must still verify
}

// TamperCases derives the broken copies of v that must fail, with the
// sentinel each must wrap, plus a few changes that must not matter.
func TamperCases(t testing.TB, v Vector) []TamperCase {
	t.Helper()
	tp := v.Tamper
	sigHeader := tp.Signature.Header
	setSig := func(f func(string) string) func(r *Request) {
		return func(r *Request) { r.H.Set(sigHeader, f(r.H.Get(sigHeader))) }
	}
	var cs []TamperCase
	add := func(name string, want error, modify func(r *Request)) {
		cs = append(cs, TamperCase{Name: name, Modify: modify, Want: want})
	}

	if tp.BodySigned {
		add("body-byte-flipped", verify.ErrNoValidSignature, func(r *Request) { r.Body[len(r.Body)/2] ^= 0x01 })
		add("body-appended", verify.ErrNoValidSignature, func(r *Request) { r.Body = append(r.Body, 'x') })
		if v.Provider == "videovector" {
			// Whitespace is not part of the canonical form.
			add("body-whitespace-appended", nil, func(r *Request) { r.Body = append(r.Body, " \n"...) })
		} else {
			add("body-whitespace-appended", verify.ErrNoValidSignature, func(r *Request) { r.Body = append(r.Body, " \n"...) })
		}
	} else {
		add("unsigned-body-changed", nil, func(r *Request) { r.Body[len(r.Body)/2] ^= 0x01 })
	}
	add("wrong-secret", verify.ErrNoValidSignature, func(r *Request) { r.Cfg = v.WrongOptions.Config(t) })
	add("signature-missing", verify.ErrMissingHeader, func(r *Request) { r.H.Del(sigHeader) })
	add("signature-empty", verify.ErrMissingHeader, func(r *Request) { r.H.Set(sigHeader, "") })

	switch tp.Signature.Kind {
	case "hex-prefixed", "hex", "hex-optional-prefix":
		add("signature-hex-digit-changed", verify.ErrNoValidSignature, setSig(FlipLastHex))
		add("signature-bad-hex", verify.ErrMalformedHeader, setSig(func(s string) string { return s[:len(s)-2] + "zz" }))
		add("signature-truncated", verify.ErrMalformedHeader, setSig(func(s string) string { return s[:len(s)-2] }))
		add("signature-doubled", verify.ErrMalformedHeader, setSig(func(s string) string { return s + s[len(s)-64:] }))
		add("signature-uppercase", nil, setSig(func(s string) string {
			p, hex := SplitHexPrefix(s)
			return p + strings.ToUpper(hex)
		}))
	}
	switch tp.Signature.Kind {
	case "hex-prefixed":
		add("signature-no-prefix", verify.ErrMalformedHeader, setSig(func(s string) string { _, hex := SplitHexPrefix(s); return hex }))
		add("signature-other-prefix", verify.ErrMalformedHeader, setSig(func(s string) string { _, hex := SplitHexPrefix(s); return "sha1=" + hex }))
	case "hex":
		add("signature-unexpected-prefix", verify.ErrMalformedHeader, setSig(func(s string) string { return "sha256=" + s }))
	case "hex-optional-prefix":
		add("signature-prefix-toggled", nil, setSig(func(s string) string {
			if p, hex := SplitHexPrefix(s); p != "" {
				return hex
			}
			return "sha256=" + s
		}))
	case "base64":
		add("signature-base64-char-changed", verify.ErrNoValidSignature, setSig(func(s string) string {
			i := strings.IndexByte(s, '=') + 1 // after the "v1=" prefix
			return s[:i] + string(OtherB64(s[i])) + s[i+1:]
		}))
		add("signature-not-base64", verify.ErrMalformedHeader, setSig(func(s string) string { return "v1=!!!!notbase64!!!!" }))
		add("signature-short", verify.ErrMalformedHeader, setSig(func(s string) string { return "v1=c2hvcnQ=" }))
		add("signature-no-prefix", verify.ErrMalformedHeader, setSig(func(s string) string { return strings.TrimPrefix(s, "v1=") }))
	case "v1":
		add("signature-base64-char-changed", verify.ErrNoValidSignature, setSig(func(s string) string {
			entries := strings.Fields(s)
			for i, e := range entries {
				if strings.HasPrefix(e, "v1,") {
					entries[i] = "v1," + string(OtherB64(e[3])) + e[4:]
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
		add("signed-header-changed/"+name, verify.ErrNoValidSignature, func(r *Request) { r.H.Set(name, ChangeDigit(r.H.Get(name))) })
	}
	for _, name := range tp.RequiredHeaders {
		add("missing/"+name, verify.ErrMissingHeader, func(r *Request) { r.H.Del(name) })
	}
	if ts := tp.Timestamp; ts != nil {
		signed := time.Unix(ts.SignedAt, 0)
		window := time.Duration(ts.WindowS) * time.Second
		add("timestamp-stale", verify.ErrTooOld, func(r *Request) { r.Now = signed.Add(window + time.Second) })
		add("timestamp-future", verify.ErrTooNew, func(r *Request) { r.Now = signed.Add(-window - time.Second) })
		add("timestamp-oldest-accepted", nil, func(r *Request) { r.Now = signed.Add(window) })
		add("timestamp-newest-accepted", nil, func(r *Request) { r.Now = signed.Add(-window) })
		add("timestamp-malformed", verify.ErrMalformedHeader, func(r *Request) { r.H.Set(ts.Header, "yesterday") })
		add("timestamp-negative", verify.ErrMalformedHeader, func(r *Request) { r.H.Set(ts.Header, "-1") })
		if !containsHeader(tp.RequiredHeaders, ts.Header) {
			add("timestamp-optional-absent", nil, func(r *Request) { r.H.Del(ts.Header) })
		}
	}
	if name := tp.WebhookIDHeader; name != "" {
		add("webhook-id-mismatch", verify.ErrWebhookIDMismatch, func(r *Request) { r.H.Set(name, "wh_someone_else") })
		add("webhook-id-missing", verify.ErrWebhookIDMismatch, func(r *Request) { r.H.Del(name) })
	}
	return cs
}

// TamperedVectors checks that every broken copy of a golden vector of
// provider fails with the right sentinel and the right 400-or-401 class.
func TamperedVectors(t *testing.T, provider string) {
	for _, v := range LoadVectors(t, provider) {
		for _, c := range TamperCases(t, v) {
			t.Run(v.Name+"/"+c.Name, func(t *testing.T) {
				err := RunTampered(t, v, c)
				if c.Want == nil {
					if err != nil {
						t.Fatalf("Verify: %v, want success", err)
					}
					return
				}
				if !errors.Is(err, c.Want) {
					t.Fatalf("Verify: %v, want %v", err, c.Want)
				}
				wantBad := c.Want == verify.ErrMissingHeader || c.Want == verify.ErrMalformedHeader
				if got := verify.IsBadRequest(err); got != wantBad {
					t.Errorf("IsBadRequest(%v) = %v, want %v", err, got, wantBad)
				}
			})
		}
	}
}

// RunTampered verifies v's request changed by c.
func RunTampered(t testing.TB, v Vector, c TamperCase) error {
	t.Helper()
	r := &Request{H: v.Header(), Body: v.DecodedBody(t), Now: v.Now(), Cfg: v.Options.Config(t)}
	c.Modify(r)
	return NewAdapter(t, v.Provider, r.Cfg).Verify(r.H, r.Body, r.Now)
}

// ParseRejectsNonJSON: a verified request whose body is not a JSON object
// is a bad request (with the adapter of provider's first vector).
func ParseRejectsNonJSON(t *testing.T, provider string) {
	v := LoadVectors(t, provider)[0]
	a := NewAdapter(t, v.Provider, v.Options.Config(t))
	for _, body := range []string{"", "not json", "[1,2]", `"s"`, `{"a":1} {"b":2}`, `{"a":1}]`, `{"a":`} {
		t.Run(v.Provider+"/"+body, func(t *testing.T) {
			_, err := a.Parse(v.Header(), []byte(body))
			if !errors.Is(err, verify.ErrInvalidJSON) {
				t.Fatalf("Parse(%q) = %v, want ErrInvalidJSON", body, err)
			}
			if !verify.IsBadRequest(err) {
				t.Errorf("IsBadRequest(%v) = false", err)
			}
		})
	}
}

// SignFunc signs v's body at time at with a, as v's provider would send it.
type SignFunc func(t testing.TB, a providers.Adapter, v Vector, at time.Time) (http.Header, error)

// PlainSign signs with a.Sign.
func PlainSign(t testing.TB, a providers.Adapter, v Vector, at time.Time) (http.Header, error) {
	return a.Sign(v.DecodedBody(t), at)
}

// SignMatchesVectors: the adapter's signer (sign, or PlainSign if nil),
// keyed with one configured secret at the vector's signing time,
// reproduces the Python signature. Vectors whose timestamp header is not
// unix seconds are skipped (the signers send unix seconds).
func SignMatchesVectors(t *testing.T, provider string, sign SignFunc) {
	if sign == nil {
		sign = PlainSign
	}
	for _, v := range LoadVectors(t, provider) {
		t.Run(v.Name, func(t *testing.T) {
			at := v.Now()
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
				cfg := v.Options.Config(t)
				if s != "" {
					cfg.Common.Secrets = SecretsOf(s)
				}
				h, err := sign(t, NewAdapter(t, v.Provider, cfg), v, at)
				if err != nil {
					t.Fatalf("Sign: %v", err)
				}
				matched = matched || sameSignature(v.Tamper.Signature.Kind, h.Get(v.Tamper.Signature.Header), want)
			}
			if !matched {
				t.Fatalf("no configured secret reproduces %s: %q", v.Tamper.Signature.Header, want)
			}
		})
	}
}

// sameSignature compares a signer's header with a vector's: hex in any case
// and with an optional sha256= prefix, a v1 entry among the vector's list.
func sameSignature(kind, got, want string) bool {
	switch kind {
	case "hex-prefixed", "hex", "hex-optional-prefix":
		_, g := SplitHexPrefix(got)
		_, w := SplitHexPrefix(want)
		return g != "" && strings.EqualFold(g, w)
	case "v1":
		return got != "" && slices.Contains(strings.Fields(want), got)
	}
	return got == want
}

// SplitHexPrefix splits an optional case-insensitive "sha256=" off s.
func SplitHexPrefix(s string) (prefix, hex string) {
	if len(s) > 7 && strings.EqualFold(s[:7], "sha256=") {
		return s[:7], s[7:]
	}
	return "", s
}

// FlipLastHex changes the last hex digit of s.
func FlipLastHex(s string) string {
	c := s[len(s)-1]
	r := byte('0')
	if c == '0' {
		r = '1'
	}
	return s[:len(s)-1] + string(r)
}

// OtherB64 returns another base64 character than c.
func OtherB64(c byte) byte {
	if c == 'A' {
		return 'B'
	}
	return 'A'
}

// ChangeDigit changes the last digit of s (or appends one), keeping a
// timestamp or id well-formed.
func ChangeDigit(s string) string {
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
