package shortkit_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/providers"
	"github.com/hookrelay/hookrelay/providers/shortkit"
	"github.com/hookrelay/hookrelay/verify"
)

// callbackVector is one golden callback of testdata/callbacks.json (made
// by testdata/gen_callbacks.py).
type callbackVector struct {
	Name    string   `json:"name"`
	Secrets []string `json:"secrets"`
	Query   string   `json:"query"`
	Body    string   `json:"body"`
	Now     int64    `json:"now"`
	Expect  struct {
		Type, Subject, Time string
		DedupeKey           string `json:"dedupe_key"`
	} `json:"expect"`
}

func loadCallbacks(t *testing.T) []callbackVector {
	t.Helper()
	b, err := os.ReadFile("testdata/callbacks.json")
	if err != nil {
		t.Fatal(err)
	}
	var vs []callbackVector
	if err := json.Unmarshal(b, &vs); err != nil {
		t.Fatal(err)
	}
	if len(vs) < 6 {
		t.Fatalf("only %d callback vectors", len(vs))
	}
	return vs
}

func tokenSource(t *testing.T, secrets []providers.Secret) *providers.Source {
	t.Helper()
	a, err := shortkit.New(providers.Common{Secrets: secrets}, shortkit.Options{Scheme: shortkit.SchemeCallbackToken})
	if err != nil {
		t.Fatal(err)
	}
	return &providers.Source{Name: "sk", Provider: shortkit.Name, Adapter: a}
}

// TestCallbackTokenVectors: every golden callback is accepted with its
// type, subject, time and body-hash dedupe key; wrong, missing, empty and
// expired tokens are refused with the right error; a repeated token
// parameter verifies whatever the order.
func TestCallbackTokenVectors(t *testing.T) {
	for _, v := range loadCallbacks(t) {
		t.Run(v.Name, func(t *testing.T) {
			body, err := base64.StdEncoding.DecodeString(v.Body)
			if err != nil {
				t.Fatal(err)
			}
			now := time.Unix(v.Now, 0)
			q, err := url.ParseQuery(v.Query)
			if err != nil {
				t.Fatal(err)
			}
			secrets := make([]providers.Secret, len(v.Secrets))
			for i, s := range v.Secrets {
				secrets[i] = providers.Secret{Value: s}
			}
			src := tokenSource(t, secrets)
			h := http.Header{"Content-Type": {"application/json"}}
			ev, err := src.Accept(q.Encode(), h, body, now)
			if err != nil {
				t.Fatalf("Accept: %v", err)
			}
			if ev.Type != v.Expect.Type || ev.Subject != v.Expect.Subject || ev.DedupeKey != v.Expect.DedupeKey {
				t.Errorf("event = %+v, want type %q subject %q dedupe %q", ev, v.Expect.Type, v.Expect.Subject, v.Expect.DedupeKey)
			}
			if got := ev.Time.UTC().Format("2006-01-02T15:04:05.999Z07:00"); v.Expect.Time != "" && got != v.Expect.Time {
				t.Errorf("time = %s, want %s", got, v.Expect.Time)
			}
			token := q.Get(shortkit.TokenParam)
			refuse := func(name string, q url.Values, at time.Time, src *providers.Source, want error) {
				t.Helper()
				_, err := src.Accept(q.Encode(), h, body, at)
				if !errors.Is(err, want) {
					t.Errorf("%s: %v, want %v", name, err, want)
				}
				if err != nil && strings.Contains(err.Error(), token) {
					t.Errorf("%s: error %q shows the token", name, err)
				}
			}
			wrong := cloneQuery(q)
			wrong.Set(shortkit.TokenParam, token[:len(token)-1]+"x")
			refuse("wrong token", wrong, now, src, verify.ErrNoValidSignature)
			missing := cloneQuery(q)
			missing.Del(shortkit.TokenParam)
			refuse("missing token", missing, now, src, verify.ErrMissingToken)
			empty := cloneQuery(q)
			empty.Set(shortkit.TokenParam, "")
			refuse("empty token", empty, now, src, verify.ErrMissingToken)
			if !verify.IsBadRequest(verify.ErrMissingToken) {
				t.Error("a missing token is not a bad request")
			}
			// Headers alone never verify a callback-token source.
			if err := src.Adapter.Verify(h, body, now); err == nil {
				t.Error("Verify without the query succeeded")
			}
			for _, order := range [][]string{{"nope", token}, {token, "nope"}} {
				rep := cloneQuery(q)
				rep[shortkit.TokenParam] = order
				if _, err := src.Accept(rep.Encode(), h, body, now); err != nil {
					t.Errorf("repeated token %q: %v", order, err)
				}
			}
			// The token's secret expires: refused from that instant on.
			exp := make([]providers.Secret, len(secrets))
			copy(exp, secrets)
			for i := range exp {
				if exp[i].Value == token {
					exp[i].Expires = now.Add(time.Minute)
				}
			}
			expiring := tokenSource(t, exp)
			if _, err := expiring.Accept(q.Encode(), h, body, now.Add(time.Minute-time.Nanosecond)); err != nil {
				t.Errorf("before expiry: %v", err)
			}
			refuse("expired token", q, now.Add(time.Minute), expiring, verify.ErrNoValidSignature)
		})
	}
}

// TestCallbackTokenSignQuery: the adapter puts its first secret in the
// query, and what it builds verifies.
func TestCallbackTokenSignQuery(t *testing.T) {
	src := tokenSource(t, []providers.Secret{{Value: "cbtok_first"}, {Value: "cbtok_second"}})
	q := url.Values{"requestId": {"r1"}}
	src.Adapter.(providers.QuerySigner).SignQuery(q, time.Now())
	if got := q.Get(shortkit.TokenParam); got != "cbtok_first" {
		t.Fatalf("token = %q, want the first secret", got)
	}
	body := []byte(`{"event":"content.imported","timestamp":"2026-12-01T10:00:00Z","data":{"contentId":"c"}}`)
	h, err := src.Adapter.Sign(body, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for k := range h {
		if k != "Content-Type" {
			t.Errorf("callback-token Sign set header %s: the token belongs in the URL only", k)
		}
	}
	if _, err := src.Accept(q.Encode(), h, body, time.Now()); err != nil {
		t.Fatal(err)
	}
	if got := src.Adapter.SensitiveHeaders(); len(got) != 0 {
		t.Errorf("SensitiveHeaders = %v, want none (the token is not in a header)", got)
	}
}

func cloneQuery(q url.Values) url.Values {
	out := url.Values{}
	for k, v := range q {
		out[k] = append([]string(nil), v...)
	}
	return out
}
