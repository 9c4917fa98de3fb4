package verify_test

import (
	"errors"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/verify"
)

func TestKeyActiveAt(t *testing.T) {
	exp := time.Unix(1717243200, 0)
	for _, c := range []struct {
		k    verify.Key
		now  time.Time
		want bool
	}{
		{verify.Key{Bytes: []byte("k")}, exp, true},
		{verify.Key{Bytes: []byte("k")}, time.Time{}, true},
		{verify.Key{Bytes: []byte("k"), Expires: exp}, exp.Add(-time.Nanosecond), true},
		{verify.Key{Bytes: []byte("k"), Expires: exp}, exp, false},
		{verify.Key{Bytes: []byte("k"), Expires: exp}, exp.Add(time.Hour), false},
		// The same instant in another zone is the same boundary.
		{verify.Key{Bytes: []byte("k"), Expires: exp}, exp.In(time.FixedZone("x", 3600)), false},
	} {
		if got := c.k.ActiveAt(c.now); got != c.want {
			t.Errorf("Key{Expires: %v}.ActiveAt(%v) = %v, want %v", c.k.Expires, c.now, got, c.want)
		}
	}
}

func TestCheckKeys(t *testing.T) {
	past := time.Unix(1, 0)
	for name, c := range map[string]struct {
		keys []verify.Key
		want error
	}{
		"nil":          {nil, verify.ErrEmptySecret},
		"empty":        {[]verify.Key{}, verify.ErrEmptySecret},
		"empty-bytes":  {[]verify.Key{{Bytes: []byte("a")}, {}}, verify.ErrEmptySecret},
		"ok":           {[]verify.Key{{Bytes: []byte("a")}}, nil},
		"expired-ok":   {[]verify.Key{{Bytes: []byte("a"), Expires: past}}, nil}, // expiry is not emptiness
		"two-distinct": {[]verify.Key{{Bytes: []byte("a")}, {Bytes: []byte("b"), Expires: past}}, nil},
	} {
		if err := verify.CheckKeys(c.keys); !errors.Is(err, c.want) || (c.want == nil && err != nil) {
			t.Errorf("%s: CheckKeys = %v, want %v", name, err, c.want)
		}
	}
}

func TestMatchAny(t *testing.T) {
	now := time.Unix(1717243200, 0)
	k1, k2 := []byte("key-one"), []byte("key-two")
	body := []byte(`{"a":1}`)
	sig1 := verify.HMACSHA256(k1, []byte("123"), []byte("."), body)
	sig2 := verify.HMACSHA256(k2, []byte("123"), []byte("."), body)
	other := verify.HMACSHA256([]byte("other"), body)
	parts := [][]byte{[]byte("123"), []byte("."), body}
	active := func(b []byte) verify.Key { return verify.Key{Bytes: b} }
	until := func(b []byte, d time.Duration) verify.Key { return verify.Key{Bytes: b, Expires: now.Add(d)} }

	for _, c := range []struct {
		name  string
		keys  []verify.Key
		now   time.Time
		sigs  [][]byte
		parts [][]byte
		want  error
	}{
		{"one-key", []verify.Key{active(k1)}, now, [][]byte{sig1}, parts, nil},
		{"second-key", []verify.Key{active(k1), active(k2)}, now, [][]byte{sig2}, parts, nil},
		{"second-sig", []verify.Key{active(k1)}, now, [][]byte{other, sig1}, parts, nil},
		{"parts-concatenated", []verify.Key{active(k1)}, now, [][]byte{sig1}, [][]byte{[]byte("12"), []byte("3."), body}, nil},
		{"wrong-sig", []verify.Key{active(k1), active(k2)}, now, [][]byte{other}, parts, verify.ErrNoValidSignature},
		{"wrong-content", []verify.Key{active(k1)}, now, [][]byte{sig1}, [][]byte{body}, verify.ErrNoValidSignature},
		{"no-sigs", []verify.Key{active(k1)}, now, nil, parts, verify.ErrNoValidSignature},
		{"truncated-sig", []verify.Key{active(k1)}, now, [][]byte{sig1[:31]}, parts, verify.ErrNoValidSignature},
		{"expires-later", []verify.Key{until(k1, time.Second)}, now, [][]byte{sig1}, parts, nil},
		{"expires-in-1ns", []verify.Key{until(k1, time.Nanosecond)}, now, [][]byte{sig1}, parts, nil},
		{"expires-now", []verify.Key{until(k1, 0)}, now, [][]byte{sig1}, parts, verify.ErrNoValidSignature},
		{"expired", []verify.Key{until(k1, -time.Hour)}, now, [][]byte{sig1}, parts, verify.ErrNoValidSignature},
		{"expired-other-active", []verify.Key{until(k1, 0), active(k2)}, now, [][]byte{sig1}, parts, verify.ErrNoValidSignature},
		{"expired-second-matches", []verify.Key{until(k1, 0), active(k2)}, now, [][]byte{sig2}, parts, nil},
		{"all-expired", []verify.Key{until(k1, 0), until(k2, -time.Second)}, now, [][]byte{sig1, sig2}, parts, verify.ErrNoValidSignature},
		{"no-keys", nil, now, [][]byte{sig1}, parts, verify.ErrEmptySecret},
		{"empty-key", []verify.Key{active(k1), {}}, now, [][]byte{sig1}, parts, verify.ErrEmptySecret},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := verify.MatchAny(c.keys, c.now, c.sigs, c.parts...)
			if c.want == nil {
				if err != nil {
					t.Fatalf("MatchAny = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("MatchAny = %v, want %v", err, c.want)
			}
		})
	}
}

func TestMatchToken(t *testing.T) {
	now := time.Unix(1717243200, 0)
	tok := func(s string, d time.Duration) verify.Key {
		k := verify.Key{Bytes: []byte(s)}
		if d != 0 {
			k.Expires = now.Add(d)
		}
		return k
	}
	for _, c := range []struct {
		name  string
		keys  []verify.Key
		now   time.Time
		token string
		want  bool
	}{
		{"match", []verify.Key{tok("tok_a", 0)}, now, "tok_a", true},
		{"second", []verify.Key{tok("tok_a", 0), tok("tok_b", 0)}, now, "tok_b", true},
		{"mismatch", []verify.Key{tok("tok_a", 0)}, now, "tok_b", false},
		{"prefix", []verify.Key{tok("tok_a", 0)}, now, "tok_", false},
		{"longer", []verify.Key{tok("tok_a", 0)}, now, "tok_ab", false},
		{"case", []verify.Key{tok("tok_a", 0)}, now, "TOK_A", false},
		{"empty-token", []verify.Key{tok("tok_a", 0)}, now, "", false},
		{"no-keys", nil, now, "tok_a", false},
		{"before-expiry", []verify.Key{tok("tok_a", time.Nanosecond)}, now, "tok_a", true},
		{"at-expiry", []verify.Key{tok("tok_a", time.Second)}, now.Add(time.Second), "tok_a", false},
		{"after-expiry", []verify.Key{tok("tok_a", -time.Second)}, now, "tok_a", false},
		{"expired-other-active", []verify.Key{tok("tok_a", -time.Second), tok("tok_b", 0)}, now, "tok_a", false},
		{"expired-second-matches", []verify.Key{tok("tok_a", -time.Second), tok("tok_b", 0)}, now, "tok_b", true},
		{"all-expired", []verify.Key{tok("tok_a", -time.Second), tok("tok_b", -time.Nanosecond)}, now, "tok_b", false},
	} {
		if got := verify.MatchToken(c.keys, c.now, c.token); got != c.want {
			t.Errorf("%s: MatchToken = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestValidHeaderName(t *testing.T) {
	for name, ok := range map[string]bool{
		"X-Signature": true, "webhook-id": true, "X_Sig": true, "x.sig~1!#$%&'*+^`|": true,
		"": false, "X Sig": false, "X:Sig": false, "Ü": false, "X\tSig": false, "X\r\nSig": false,
		"(x)": false, "x,y": false, `"x"`: false, "x/y": false,
	} {
		if got := verify.ValidHeaderName(name); got != ok {
			t.Errorf("ValidHeaderName(%q) = %v, want %v", name, got, ok)
		}
	}
}

func TestStandardSignature(t *testing.T) {
	// The example of the Standard Webhooks specification.
	key, err := verify.DecodeWebhookSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	const want = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	if got := verify.StandardSignature(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", []byte(`{"test": 2432232314}`)); got != want {
		t.Fatalf("StandardSignature = %q, want %q", got, want)
	}
	bare, err := verify.DecodeWebhookSecret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil || string(bare) != string(key) {
		t.Errorf("DecodeWebhookSecret(bare) = %x, %v; want the prefixed secret's key", bare, err)
	}
	if _, err := verify.DecodeWebhookSecret("whsec_"); !errors.Is(err, verify.ErrEmptySecret) {
		t.Errorf("DecodeWebhookSecret(whsec_) = %v, want ErrEmptySecret", err)
	}
}
