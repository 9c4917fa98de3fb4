package providers

import (
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/hookrelay/hookrelay/verify"
)

// Secret is one configured secret of a source: its value and, optionally,
// the instant from which it is refused (rotation without a restart).
type Secret struct {
	Value   string
	Expires time.Time
}

// Common holds the settings every source has, whatever its provider.
type Common struct {
	// Secrets: any may match (rotation). Adapters that need one refuse an
	// empty list.
	Secrets []Secret
	// Tolerance for timestamped schemes; zero means the adapter's default.
	Tolerance time.Duration
}

// Options is a provider's own part of a source's configuration: a pointer
// to a struct whose yaml-tagged fields are the keys the provider takes
// besides provider, secrets, tolerance and dedupe_key. The config loader
// decodes the source's other keys into it, refusing keys it has no field
// for, then calls New.
type Options interface {
	// New validates the options together with c and returns the source's
	// adapter. Errors are *OptionError values naming the config key.
	New(c Common) (Adapter, error)
}

// NoOptions is the Options of a provider that takes no keys of its own;
// build names the provider's constructor.
type NoOptions func(c Common) (Adapter, error)

// New calls the constructor.
func (f NoOptions) New(c Common) (Adapter, error) { return f(c) }

// AsAdapter returns a provider's typed constructor result as an Adapter,
// with a nil interface (not a typed nil pointer) on error.
func AsAdapter[A Adapter](a A, err error) (Adapter, error) {
	if err != nil {
		return nil, err
	}
	return a, nil
}

// Spec describes one provider to the config pipeline and to `hookrelay
// send`. Every provider package exports one; package providers/registry
// lists them.
type Spec struct {
	// Name is the provider name used in the config file.
	Name string
	// NewOptions returns the provider's options with their defaults.
	NewOptions func() Options
	// Events are the event types Sample can make; the first is the default.
	Events []string
	// Sample returns a realistic payload of event whose ids (and so its
	// dedupe key) derive from uid.
	Sample func(event, uid string, now time.Time) map[string]any
	// SignSample, optional, signs a sample of event as the provider puts it
	// on the wire (it may rewrite the body, and set delivery ids derived
	// from uid); the default is the adapter's Sign.
	SignSample func(a Adapter, event string, body []byte, uid string, now time.Time) ([]byte, http.Header, error)
}

// OptionError reports a bad per-source option. Its message names the
// provider and the option but never contains a secret or a header value.
type OptionError struct {
	Provider string // adapter name, e.g. "sketchpen"
	Option   string // config key, e.g. "secrets" or "secrets[1]"
	Err      error
}

// Error names the provider and option, then the problem.
func (e *OptionError) Error() string {
	return fmt.Sprintf("%s: option %s: %v", e.Provider, e.Option, e.Err)
}

// Unwrap returns the underlying error (verify.ErrEmptySecret for secrets).
func (e *OptionError) Unwrap() error { return e.Err }

// Config keys shared by every provider.
const (
	OptSecrets   = "secrets"
	OptTolerance = "tolerance"
)

// errEmptyList is what a source without any secret gets.
var errEmptyList = fmt.Errorf("at least one secret is required: %w", verify.ErrEmptySecret)

// Keys returns the secrets as keys made of the UTF-8 bytes of each value,
// the key form of most providers. It fails with an *OptionError wrapping
// verify.ErrEmptySecret if there is no secret or one of them is empty.
func (c Common) Keys(provider string) ([]verify.Key, error) {
	return c.KeysWith(provider, func(s string) ([]byte, error) { return []byte(s), nil })
}

// KeysWith is Keys with a provider-specific decoding of each value; its
// errors are reported as *OptionError values naming secrets[i].
func (c Common) KeysWith(provider string, decode func(string) ([]byte, error)) ([]verify.Key, error) {
	if len(c.Secrets) == 0 {
		return nil, &OptionError{Provider: provider, Option: OptSecrets, Err: errEmptyList}
	}
	keys := make([]verify.Key, len(c.Secrets))
	for i, s := range c.Secrets {
		option := fmt.Sprintf("%s[%d]", OptSecrets, i)
		if s.Value == "" {
			return nil, &OptionError{Provider: provider, Option: option, Err: verify.ErrEmptySecret}
		}
		b, err := decode(s.Value)
		if err != nil {
			return nil, &OptionError{Provider: provider, Option: option, Err: err}
		}
		keys[i] = verify.Key{Bytes: b, Expires: s.Expires}
	}
	return keys, nil
}

// ToleranceOr returns the configured tolerance, or def when none is set. A
// negative tolerance is an *OptionError: a window cannot be switched off.
func (c Common) ToleranceOr(provider string, def time.Duration) (time.Duration, error) {
	switch {
	case c.Tolerance < 0:
		return 0, &OptionError{Provider: provider, Option: OptTolerance, Err: errors.New("must not be negative")}
	case c.Tolerance == 0:
		return def, nil
	}
	return c.Tolerance, nil
}

// SigningKey returns the key signers use at now: the first one still
// active (during a rotation an expired first secret is skipped), else the
// first.
func SigningKey(keys []verify.Key, now time.Time) []byte {
	for _, k := range keys {
		if k.ActiveAt(now) {
			return k.Bytes
		}
	}
	return keys[0].Bytes
}

// SetOption sets the option of opts whose yaml tag is key (a provider's
// own key, as written in the config file) from its text. It fails if opts
// has no such key, naming the keys it has, or if text does not parse as
// the option's type (string, bool or integer).
func SetOption(opts Options, key, text string) error {
	v := reflect.ValueOf(opts)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("unknown key %q (this provider takes no options of its own)", key)
	}
	v = v.Elem()
	for i := 0; i < v.NumField(); i++ {
		if tag, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("yaml"), ","); tag != key {
			continue
		}
		f := v.Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString(text)
		case reflect.Bool:
			b, err := strconv.ParseBool(text)
			if err != nil {
				return fmt.Errorf("%s: want true or false", key)
			}
			f.SetBool(b)
		case reflect.Int, reflect.Int64:
			n, err := strconv.ParseInt(text, 10, 64)
			if err != nil {
				return fmt.Errorf("%s: want an integer", key)
			}
			f.SetInt(n)
		default:
			return fmt.Errorf("%s: unsupported option type %s", key, f.Type())
		}
		return nil
	}
	return fmt.Errorf("unknown key %q (this provider's own keys: %s)", key, strings.Join(OptionKeys(opts), ", "))
}

// OptionKeys lists the config keys of a provider's own options.
func OptionKeys(opts Options) []string {
	v := reflect.ValueOf(opts)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return nil
	}
	t := v.Elem().Type()
	keys := make([]string, 0, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		if tag, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ","); tag != "" && tag != "-" {
			keys = append(keys, tag)
		}
	}
	return keys
}

// SecretOptions returns the values of opts' fields tagged `secret:"true"`
// (a callback header's expected value, say), which error messages and
// pages must never show.
func SecretOptions(opts Options) []string {
	v := reflect.ValueOf(opts)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return nil
	}
	v = v.Elem()
	var out []string
	for i := 0; i < v.NumField(); i++ {
		if v.Type().Field(i).Tag.Get("secret") == "true" && v.Field(i).Kind() == reflect.String {
			out = append(out, v.Field(i).String())
		}
	}
	return out
}
