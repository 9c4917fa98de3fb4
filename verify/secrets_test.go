package verify_test

import (
	"testing"

	"github.com/hookrelay/hookrelay/verify"
)

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
