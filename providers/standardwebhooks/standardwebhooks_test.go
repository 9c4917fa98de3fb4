package standardwebhooks_test

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/hookrelay/hookrelay/providers/standardwebhooks"
	"github.com/hookrelay/hookrelay/verify"
)

// The example of the Standard Webhooks specification and reference
// libraries.
const (
	specSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	specID        = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	specTimestamp = "1614265330"
	specBody      = `{"test": 2432232314}`
	specSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func TestSignatureSpecExample(t *testing.T) {
	key, err := verify.DecodeWebhookSecret(specSecret)
	if err != nil {
		t.Fatal(err)
	}
	if got := verify.StandardSignature(key, specID, specTimestamp, []byte(specBody)); got != specSignature {
		t.Fatalf("StandardSignature = %q, want %q", got, specSignature)
	}
}

func TestDecodeWebhookSecret(t *testing.T) {
	for _, c := range []struct {
		name, secret string
		want         string // base64 of the key; "" for an error
		err          error
	}{
		{"prefixed", specSecret, "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", nil},
		{"bare", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", nil},
		{"unpadded", "whsec_c2VjcmV0", "c2VjcmV0", nil},
		{"url-alphabet", "whsec_-_8", "+/8=", nil},
		{"empty-after-prefix", "whsec_", "", verify.ErrEmptySecret},
		{"not-base64", "whsec_***", "", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			key, err := verify.DecodeWebhookSecret(c.secret)
			if c.want == "" {
				if err == nil {
					t.Fatalf("DecodeWebhookSecret(%q) = %x, want an error", c.secret, key)
				}
				if c.err != nil && !errors.Is(err, c.err) {
					t.Fatalf("DecodeWebhookSecret(%q): %v, want %v", c.secret, err, c.err)
				}
				if strings.Contains(err.Error(), strings.TrimPrefix(c.secret, "whsec_")) && len(c.secret) > 6 {
					t.Fatalf("error %q contains the secret", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := base64.StdEncoding.EncodeToString(key); got != c.want {
				t.Fatalf("DecodeWebhookSecret(%q) = %s, want %s", c.secret, got, c.want)
			}
		})
	}
}

func TestParseSignatures(t *testing.T) {
	sig := strings.TrimPrefix(specSignature, "v1,")
	for _, c := range []struct {
		name, value string
		n           int // number of signatures; 0 for an error
		err         error
	}{
		{"one", specSignature, 1, nil},
		{"several", specSignature + " v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", 2, nil},
		{"other-versions-skipped", "v1a,abcd " + specSignature + " v2," + sig, 1, nil},
		{"extra-spaces", "  " + specSignature + "   ", 1, nil},
		{"unpadded", "v1," + strings.TrimRight(sig, "="), 1, nil},
		{"empty", "", 0, verify.ErrMissingHeader},
		{"blank", "   ", 0, verify.ErrMissingHeader},
		{"only-other-versions", "v1a," + sig + " v2," + sig, 0, verify.ErrMalformedHeader},
		{"no-comma", "v1" + sig, 0, verify.ErrMalformedHeader},
		{"wrong-length", "v1,c2hvcnQ=", 0, verify.ErrMalformedHeader},
		{"not-base64", "v1,****", 0, verify.ErrMalformedHeader},
		{"uppercase-version", "V1," + sig, 0, verify.ErrMalformedHeader},
	} {
		t.Run(c.name, func(t *testing.T) {
			sigs, err := standardwebhooks.ParseSignatures(c.value)
			if c.n == 0 {
				if !errors.Is(err, c.err) {
					t.Fatalf("ParseSignatures(%q) = %d, %v; want %v", c.value, len(sigs), err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := len(sigs); got != c.n {
				t.Fatalf("ParseSignatures(%q): %d signatures, want %d", c.value, got, c.n)
			}
		})
	}
}

func FuzzParseSignatures(f *testing.F) {
	f.Fuzz(func(t *testing.T, value string) {
		sigs, err := standardwebhooks.ParseSignatures(value)
		if err != nil {
			if !errors.Is(err, verify.ErrMissingHeader) && !errors.Is(err, verify.ErrMalformedHeader) {
				t.Fatalf("ParseSignatures(%q): unexpected error %v", value, err)
			}
			return
		}
		if len(sigs) == 0 {
			t.Fatalf("ParseSignatures(%q): no signatures and no error", value)
		}
		for _, s := range sigs {
			if len(s) != 32 {
				t.Fatalf("ParseSignatures(%q): a %d-byte signature", value, len(s))
			}
		}
	})
}
