package registry_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/providers"
	"github.com/hookrelay/hookrelay/providers/registry"
)

// vector is one request of ../testdata/vectors.json, signed by
// ../testdata/gen_vectors.py with Python's hmac, hashlib and json.
type vector struct {
	Name         string            `json:"name"`
	Provider     string            `json:"provider"`
	Options      vectorOptions     `json:"options"`
	WrongOptions vectorOptions     `json:"wrong_options"`
	Headers      map[string]string `json:"headers"`
	Body         string            `json:"body"` // base64
	Now          int64             `json:"now"`
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

// vectorOptions are source options spelled with the config file's keys.
type vectorOptions struct {
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

func (o vectorOptions) options(t testing.TB) providers.Options {
	t.Helper()
	var tol time.Duration
	if o.Tolerance != "" {
		var err error
		if tol, err = time.ParseDuration(o.Tolerance); err != nil {
			t.Fatalf("tolerance %q: %v", o.Tolerance, err)
		}
	}
	return providers.Options{
		Secrets: o.Secrets, Tolerance: tol, Scheme: o.Scheme, WebhookID: o.WebhookID,
		Header: o.Header, Value: o.Value, SignatureHeader: o.SignatureHeader, Prefix: o.Prefix,
		Encoding: o.Encoding, Template: o.Template, TimestampHeader: o.TimestampHeader,
		EventTypeField: o.EventTypeField, SubjectField: o.SubjectField,
	}
}

func loadVectors(t testing.TB) []vector {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "testdata", "vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Vectors []vector `json:"vectors"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Vectors) == 0 {
		t.Fatal("no vectors")
	}
	return doc.Vectors
}

func (v vector) body(t testing.TB) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(v.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (v vector) header() http.Header {
	h := http.Header{}
	for k, val := range v.Headers {
		h.Set(k, val)
	}
	return h
}

func (v vector) now() time.Time { return time.Unix(v.Now, 0) }

func newAdapter(t testing.TB, provider string, opts providers.Options) providers.Adapter {
	t.Helper()
	a, err := registry.New(provider, opts)
	if err != nil {
		t.Fatalf("registry.New(%q): %v", provider, err)
	}
	return a
}
