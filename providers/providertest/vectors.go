// Package providertest holds what the adapters' tests share: the golden
// vectors of ../testdata/vectors.json, building an adapter by provider name
// through the registry, the configured sources every adapter is tested
// with, and the checks that each provider's package runs on itself
// (tampering, secret leaks, expiry, specs, fuzzing, benchmarks).
//
// Only _test.go files import it.
package providertest

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/providers"
)

// VectorsFile is the golden vectors' file, relative to the directory of
// any package under providers/ (where go test runs its tests).
var VectorsFile = filepath.Join("..", "testdata", "vectors.json")

// Vector is one request of ../testdata/vectors.json, signed by
// ../testdata/gen_vectors.py with Python's hmac, hashlib and json.
type Vector struct {
	Name         string            `json:"name"`
	Provider     string            `json:"provider"`
	Options      VectorOptions     `json:"options"`
	WrongOptions VectorOptions     `json:"wrong_options"`
	Headers      map[string]string `json:"headers"`
	Body         string            `json:"body"` // base64
	NowUnix      int64             `json:"now"`
	Path         string            `json:"path"` // videovector: raw or canonical
	Expect       struct {
		Type            string `json:"type"`
		Subject         string `json:"subject"`
		DedupeKey       string `json:"dedupe_key"`
		AcceptDedupeKey string `json:"accept_dedupe_key"`
		DeliveryID      string `json:"delivery_id"`
		Time            string `json:"time"`
	} `json:"expect"`
	Tamper struct {
		Signature struct {
			Header string `json:"header"`
			Kind   string `json:"kind"` // hex-prefixed, hex, hex-optional-prefix, base64, v1, value
		} `json:"signature"`
		SignedHeaders   []string `json:"signed_headers"`
		RequiredHeaders []string `json:"required_headers"`
		Timestamp       *struct {
			Header   string `json:"header"`
			SignedAt int64  `json:"signed_at"`
			WindowS  int64  `json:"window_s"`
		} `json:"timestamp"`
		BodySigned      bool   `json:"body_signed"`
		WebhookIDHeader string `json:"webhook_id_header"`
	} `json:"tamper"`
}

// VectorOptions are source options spelled with the config file's keys.
type VectorOptions struct {
	Secrets         []string `json:"secrets"`
	Tolerance       string   `json:"tolerance"`
	Scheme          string   `json:"scheme"`
	WebhookID       string   `json:"webhook_id"`
	Header          string   `json:"header"`
	Value           string   `json:"value"`
	SignatureHeader string   `json:"signature_header"`
	Prefix          string   `json:"prefix"`
	Encoding        string   `json:"encoding"`
	Template        string   `json:"template"`
	TimestampHeader string   `json:"timestamp_header"`
	EventTypeField  string   `json:"event_type_field"`
	SubjectField    string   `json:"subject_field"`
}

// Config splits the vector's options into the common settings and the
// provider's own keys (only those set).
func (o VectorOptions) Config(t testing.TB) Config {
	t.Helper()
	var tol time.Duration
	if o.Tolerance != "" {
		var err error
		if tol, err = time.ParseDuration(o.Tolerance); err != nil {
			t.Fatalf("tolerance %q: %v", o.Tolerance, err)
		}
	}
	opts := map[string]string{}
	for k, v := range map[string]string{
		"scheme": o.Scheme, "webhook_id": o.WebhookID, "header": o.Header, "value": o.Value,
		"signature_header": o.SignatureHeader, "prefix": o.Prefix, "encoding": o.Encoding,
		"template": o.Template, "timestamp_header": o.TimestampHeader,
		"event_type_field": o.EventTypeField, "subject_field": o.SubjectField,
	} {
		if v != "" {
			opts[k] = v
		}
	}
	return Config{Common: providers.Common{Secrets: SecretsOf(o.Secrets...), Tolerance: tol}, Opts: opts}
}

// AllVectors returns every vector of VectorsFile, in the file's order.
func AllVectors(t testing.TB) []Vector {
	t.Helper()
	raw, err := os.ReadFile(VectorsFile)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Vectors []Vector `json:"vectors"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Vectors) == 0 {
		t.Fatal("no vectors")
	}
	return doc.Vectors
}

// LoadVectors returns the vectors of provider, in the file's order (the
// order gen_vectors.py numbers the provider's FuzzVerify seeds in).
func LoadVectors(t testing.TB, provider string) []Vector {
	t.Helper()
	var out []Vector
	for _, v := range AllVectors(t) {
		if v.Provider == provider {
			out = append(out, v)
		}
	}
	if len(out) == 0 {
		t.Fatalf("no vectors for provider %q in %s", provider, VectorsFile)
	}
	return out
}

// DecodedBody returns the vector's body.
func (v Vector) DecodedBody(t testing.TB) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(v.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Header returns a fresh copy of the vector's headers.
func (v Vector) Header() http.Header {
	h := http.Header{}
	for k, val := range v.Headers {
		h.Set(k, val)
	}
	return h
}

// Now is the vector's verification time.
func (v Vector) Now() time.Time { return time.Unix(v.NowUnix, 0) }
