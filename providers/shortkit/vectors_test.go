package shortkit_test

import (
	"testing"

	"github.com/hookrelay/hookrelay/providers/providertest"
	"github.com/hookrelay/hookrelay/providers/shortkit"
)

// The golden vectors of shortkit in ../testdata/vectors.json, signed by
// ../testdata/gen_vectors.py with Python's hmac, hashlib and json.

func TestGoldenVectors(t *testing.T) { providertest.GoldenVectors(t, shortkit.Name) }

// TestTamperedVectors: every broken copy of a golden vector fails with the
// right sentinel and the right 400-or-401 class.
func TestTamperedVectors(t *testing.T) { providertest.TamperedVectors(t, shortkit.Name) }

// TestParseRejectsNonJSON: a verified request whose body is not a JSON
// object is a bad request.
func TestParseRejectsNonJSON(t *testing.T) { providertest.ParseRejectsNonJSON(t, shortkit.Name) }

// TestSignMatchesVectors: the signer reproduces the Python signatures.
func TestSignMatchesVectors(t *testing.T) { providertest.SignMatchesVectors(t, shortkit.Name, nil) }

// TestErrorsNeverLeakSecrets: no error of a tampered vector or of a bad
// option contains a secret, a callback value or a signature.
func TestErrorsNeverLeakSecrets(t *testing.T) {
	providertest.ErrorsNeverLeakSecrets(t, shortkit.Name, badOptions(), 60)
}

// FuzzVerify starts from the golden vectors; its seeds, one per vector, are
// written to testdata/fuzz/FuzzVerify by gen_vectors.py.
func FuzzVerify(f *testing.F) { providertest.FuzzVerify(f, shortkit.Name) }

// TestFuzzSeeds: FuzzVerify has one seed per golden vector, which picks it.
func TestFuzzSeeds(t *testing.T) { providertest.FuzzSeeds(t, shortkit.Name) }
