package providers

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hookrelay/hookrelay/verify"
)

// Config keys of the per-source options, as the config file spells them.
// Adapters name options by these keys in their errors.
const (
	OptSecrets         = "secrets"
	OptTolerance       = "tolerance"
	OptScheme          = "scheme"
	OptWebhookID       = "webhook_id"
	OptHeader          = "header"
	OptValue           = "value"
	OptSignatureHeader = "signature_header"
	OptPrefix          = "prefix"
	OptEncoding        = "encoding"
	OptTemplate        = "template"
	OptTimestampHeader = "timestamp_header"
	OptEventTypeField  = "event_type_field"
	OptSubjectField    = "subject_field"
)

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

// errEmptyList is what a source without any secret gets.
var errEmptyList = fmt.Errorf("at least one secret is required: %w", verify.ErrEmptySecret)

// SecretBytes returns the secrets as the UTF-8 bytes of each string, the key
// form of most providers. It fails with an *OptionError wrapping
// verify.ErrEmptySecret if there is no secret or one of them is empty.
func (o Options) SecretBytes(provider string) ([][]byte, error) {
	if len(o.Secrets) == 0 {
		return nil, &OptionError{Provider: provider, Option: OptSecrets, Err: errEmptyList}
	}
	keys := make([][]byte, len(o.Secrets))
	for i, s := range o.Secrets {
		if s == "" {
			return nil, &OptionError{Provider: provider, Option: fmt.Sprintf("%s[%d]", OptSecrets, i), Err: verify.ErrEmptySecret}
		}
		keys[i] = []byte(s)
	}
	return keys, nil
}

// ToleranceOr returns the configured tolerance, or def when none is set. A
// negative tolerance is an *OptionError: a window cannot be switched off.
func (o Options) ToleranceOr(provider string, def time.Duration) (time.Duration, error) {
	switch {
	case o.Tolerance < 0:
		return 0, &OptionError{Provider: provider, Option: OptTolerance, Err: errors.New("must not be negative")}
	case o.Tolerance == 0:
		return def, nil
	}
	return o.Tolerance, nil
}

// set lists the config keys of the options that hold a non-zero value.
// Secrets and tolerance are left out: every adapter takes them (tolerance is
// ignored by providers that send no timestamp).
func (o Options) set() []string {
	var keys []string
	for _, f := range []struct {
		key string
		set bool
	}{
		{OptScheme, o.Scheme != ""},
		{OptWebhookID, o.WebhookID != ""},
		{OptHeader, o.Header != ""},
		{OptValue, o.Value != ""},
		{OptSignatureHeader, o.SignatureHeader != ""},
		{OptPrefix, o.Prefix != ""},
		{OptEncoding, o.Encoding != ""},
		{OptTemplate, o.Template != ""},
		{OptTimestampHeader, o.TimestampHeader != ""},
		{OptEventTypeField, o.EventTypeField != ""},
		{OptSubjectField, o.SubjectField != ""},
	} {
		if f.set {
			keys = append(keys, f.key)
		}
	}
	return keys
}

// Only returns an *OptionError naming the first option that is set but not
// among allowed (config keys, e.g. OptWebhookID): an option the adapter
// would silently ignore is almost always a configuration mistake.
func (o Options) Only(provider string, allowed ...string) error {
	for _, k := range o.set() {
		ok := false
		for _, a := range allowed {
			ok = ok || a == k
		}
		if !ok {
			return &OptionError{Provider: provider, Option: k, Err: errors.New("not used by this provider")}
		}
	}
	return nil
}

// ValidHeaderName reports whether name can be an HTTP header field name (an
// RFC 9110 token).
func ValidHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			continue
		}
		if !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}
