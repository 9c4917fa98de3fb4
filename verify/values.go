package verify

import "strings"

// SplitList returns the entries of a repeated header: every value split at
// commas (a proxy may join repeated headers into one), trimmed, empty ones
// dropped. Use it for signature values, which hold no commas.
func SplitList(values []string) []string {
	var out []string
	for _, v := range values {
		for _, e := range strings.Split(v, ",") {
			if e = strings.TrimSpace(e); e != "" {
				out = append(out, e)
			}
		}
	}
	return out
}

// ParseAll parses every value of a (possibly repeated) signature header
// with parse and returns the signatures that parse, so that any valid one
// can verify and the order of the values never matters. With no usable
// value it fails: ErrMissingHeader when there is none at all, else
// ErrMalformedHeader.
func ParseAll(header string, values []string, parse func(string) ([]byte, error)) ([][]byte, error) {
	var sigs [][]byte
	present := false
	for _, v := range values {
		if strings.TrimSpace(v) == "" {
			continue
		}
		present = true
		if sig, err := parse(v); err == nil {
			sigs = append(sigs, sig)
		}
	}
	switch {
	case len(sigs) > 0:
		return sigs, nil
	case present:
		return nil, Malformed(header)
	}
	return nil, Missing(header)
}

// OneValue returns the value of a header that must have one (a timestamp,
// a message id): "" when absent, the value when every copy of a repeated
// header agrees, and ErrMalformedHeader when copies differ (taking the
// first would make the outcome depend on the order).
func OneValue(header string, values []string) (string, error) {
	var one string
	for i, v := range values {
		v = strings.TrimSpace(v)
		if i > 0 && v != one {
			return "", Malformed(header)
		}
		one = v
	}
	return one, nil
}
