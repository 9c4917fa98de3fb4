package registry_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
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

// config is a source's configuration as the tests build it: the common
// settings and the provider's own keys, spelled as in the config file.
type config struct {
	common providers.Common
	opts   map[string]string
}

// secretsOf returns Common.Secrets of values that never expire.
func secretsOf(values ...string) []providers.Secret {
	if values == nil {
		return nil
	}
	out := make([]providers.Secret, len(values))
	for i, v := range values {
		out[i] = providers.Secret{Value: v}
	}
	return out
}

// config splits the vector's options into the common settings and the
// provider's own keys (only those set).
func (o vectorOptions) config(t testing.TB) config {
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
	return config{common: providers.Common{Secrets: secretsOf(o.Secrets...), Tolerance: tol}, opts: opts}
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

// build makes the adapter of provider the way the config loader does: the
// provider's default options, each of opts set by its key (in sorted order,
// so that the first bad key is the one reported), then New with c.
func build(t testing.TB, provider string, c providers.Common, opts map[string]string) (providers.Adapter, error) {
	t.Helper()
	spec, err := registry.Lookup(provider)
	if err != nil {
		return nil, err
	}
	o := spec.NewOptions()
	for _, k := range slices.Sorted(maps.Keys(opts)) {
		if err := providers.SetOption(o, k, opts[k]); err != nil {
			return nil, fmt.Errorf("%s: %w", provider, err)
		}
	}
	return o.New(c)
}

// isNil reports whether a is nil or an interface holding a nil pointer:
// the provider constructors return a typed nil *Adapter with their errors,
// which Options.New passes on inside the Adapter interface.
func isNil(a providers.Adapter) bool {
	if a == nil {
		return true
	}
	v := reflect.ValueOf(a)
	return v.Kind() == reflect.Pointer && v.IsNil()
}

// newAdapter is build for a configuration that must be valid.
func newAdapter(t testing.TB, provider string, cfg config) providers.Adapter {
	t.Helper()
	a, err := build(t, provider, cfg.common, cfg.opts)
	if err != nil {
		t.Fatalf("build(%q): %v", provider, err)
	}
	return a
}
