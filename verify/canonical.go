package verify

import "errors"

// CanonicalJSON re-serializes a JSON document exactly as CPython's
// json.dumps(json.loads(raw), sort_keys=True) does.
//
// PLACEHOLDER: being implemented.
func CanonicalJSON(raw []byte) ([]byte, error) {
	return nil, errors.New("not implemented")
}
