package standardwebhooks_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/providers"
	"github.com/hookrelay/hookrelay/providers/providertest"
	"github.com/hookrelay/hookrelay/providers/standardwebhooks"
)

// The golden vectors of standardwebhooks in ../testdata/vectors.json, signed by
// ../testdata/gen_vectors.py with Python's hmac, hashlib and json.

func TestGoldenVectors(t *testing.T) { providertest.GoldenVectors(t, standardwebhooks.Name) }

// TestTamperedVectors: every broken copy of a golden vector fails with the
// right sentinel and the right 400-or-401 class.
func TestTamperedVectors(t *testing.T) { providertest.TamperedVectors(t, standardwebhooks.Name) }

// TestParseRejectsNonJSON: a verified request whose body is not a JSON
// object is a bad request.
func TestParseRejectsNonJSON(t *testing.T) {
	providertest.ParseRejectsNonJSON(t, standardwebhooks.Name)
}

// TestSignMatchesVectors: the signer reproduces the Python signatures.
func TestSignMatchesVectors(t *testing.T) {
	providertest.SignMatchesVectors(t, standardwebhooks.Name, signWithID)
}

// TestErrorsNeverLeakSecrets: no error of a tampered vector or of a bad
// option contains a secret, a callback value or a signature.
func TestErrorsNeverLeakSecrets(t *testing.T) {
	providertest.ErrorsNeverLeakSecrets(t, standardwebhooks.Name, badOptions(), 40)
}

// FuzzVerify starts from the golden vectors; its seeds, one per vector, are
// written to testdata/fuzz/FuzzVerify by gen_vectors.py.
func FuzzVerify(f *testing.F) { providertest.FuzzVerify(f, standardwebhooks.Name) }

// signWithID signs with the vector's webhook-id, as the vectors were.
func signWithID(t testing.TB, a providers.Adapter, v providertest.Vector, at time.Time) (http.Header, error) {
	return a.(*standardwebhooks.Adapter).SignWithID(v.Headers["webhook-id"], v.DecodedBody(t), at)
}

// TestFuzzSeeds: FuzzVerify has one seed per golden vector, which picks it.
func TestFuzzSeeds(t *testing.T) { providertest.FuzzSeeds(t, standardwebhooks.Name) }
