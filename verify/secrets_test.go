package verify_test

import (
	"errors"
	"testing"

	"github.com/hookrelay/hookrelay/verify"
)

// TestMatchAnySecrets: any configured secret may match any signature;
// no secret, or an empty one among good ones, is ErrEmptySecret and never
// "nothing to check".
func TestMatchAnySecrets(t *testing.T) {
	body := []byte(`{"a":1}`)
	old, cur := []byte("old-secret"), []byte("current-secret")
	sigOld, sigCur := verify.HMACSHA256(old, body), verify.HMACSHA256(cur, body)
	tests := []struct {
		name    string
		secrets [][]byte
		sigs    [][]byte
		want    error
	}{
		{"second secret, second signature", [][]byte{old, cur}, [][]byte{[]byte("junk"), sigCur}, nil},
		{"first secret", [][]byte{old, cur}, [][]byte{sigOld}, nil},
		{"no match", [][]byte{cur}, [][]byte{sigOld}, verify.ErrNoValidSignature},
		{"no signatures", [][]byte{cur}, nil, verify.ErrNoValidSignature},
		{"no secrets", nil, [][]byte{sigCur}, verify.ErrEmptySecret},
		{"an empty secret among good ones", [][]byte{cur, {}}, [][]byte{sigCur}, verify.ErrEmptySecret},
		{"the empty secret's own signature", [][]byte{{}}, [][]byte{verify.HMACSHA256(nil, body)}, verify.ErrEmptySecret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := verify.MatchAny(tt.secrets, tt.sigs, body); !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Errorf("MatchAny = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestEqualString: equal strings only; a prefix or a longer string is not.
func TestEqualString(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want bool
	}{
		{"token", "token", true}, {"", "", true},
		{"token", "tokem", false}, {"token", "tok", false}, {"tok", "token", false}, {"token", "", false},
	} {
		if got := verify.EqualString(tt.a, tt.b); got != tt.want {
			t.Errorf("EqualString(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}
