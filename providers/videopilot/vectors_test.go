package videopilot_test

import (
	"testing"

	"github.com/hookrelay/hookrelay/providers/providertest"
	"github.com/hookrelay/hookrelay/providers/videopilot"
)

// The golden vectors of videopilot in ../testdata/vectors.json, signed by
// ../testdata/gen_vectors.py with Python's hmac, hashlib and json.

func TestGoldenVectors(t *testing.T) { providertest.GoldenVectors(t, videopilot.Name) }

// TestTamperedVectors: every broken copy of a golden vector fails with the
// right sentinel and the right 400-or-401 class.
func TestTamperedVectors(t *testing.T) { providertest.TamperedVectors(t, videopilot.Name) }

// TestParseRejectsNonJSON: a verified request whose body is not a JSON
// object is a bad request.
func TestParseRejectsNonJSON(t *testing.T) { providertest.ParseRejectsNonJSON(t, videopilot.Name) }

// TestSignMatchesVectors: the signer reproduces the Python signatures.
func TestSignMatchesVectors(t *testing.T) { providertest.SignMatchesVectors(t, videopilot.Name, nil) }

// TestErrorsNeverLeakSecrets: no error of a tampered vector or of a bad
// option contains a secret, a callback value or a signature.
func TestErrorsNeverLeakSecrets(t *testing.T) {
	providertest.ErrorsNeverLeakSecrets(t, videopilot.Name, badOptions(), 25)
}

// FuzzVerify starts from the golden vectors; its seeds, one per vector, are
// written to testdata/fuzz/FuzzVerify by gen_vectors.py.
func FuzzVerify(f *testing.F) { providertest.FuzzVerify(f, videopilot.Name) }

// TestFuzzSeeds: FuzzVerify has one seed per golden vector, which picks it.
func TestFuzzSeeds(t *testing.T) { providertest.FuzzSeeds(t, videopilot.Name) }
