package providers_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/providers"
	"github.com/hookrelay/hookrelay/verify"
)

func TestCommonKeys(t *testing.T) {
	exp := time.Unix(1717243200, 0)
	c := providers.Common{Secrets: []providers.Secret{{Value: "a"}, {Value: "b", Expires: exp}}}
	keys, err := c.Keys("p")
	if err != nil || len(keys) != 2 || string(keys[0].Bytes) != "a" || string(keys[1].Bytes) != "b" {
		t.Fatalf("Keys = %v, %v", keys, err)
	}
	if !keys[0].Expires.IsZero() || !keys[1].Expires.Equal(exp) {
		t.Errorf("Keys lost the expiry: %v, %v", keys[0].Expires, keys[1].Expires)
	}
	if got := providers.SigningKey(keys, exp); string(got) != "a" {
		t.Errorf("SigningKey = %q, want a", got)
	}
	// During a rotation whose first secret has expired, signers use the
	// next one still active; with none active, the first.
	rot := []verify.Key{{Bytes: []byte("old"), Expires: exp}, {Bytes: []byte("new")}}
	if got := providers.SigningKey(rot, exp); string(got) != "new" {
		t.Errorf("SigningKey past the first secret's expiry = %q, want new", got)
	}
	if got := providers.SigningKey(rot, exp.Add(-time.Second)); string(got) != "old" {
		t.Errorf("SigningKey before the first secret's expiry = %q, want old", got)
	}
	if got := providers.SigningKey(rot[:1], exp); string(got) != "old" {
		t.Errorf("SigningKey with every key expired = %q, want the first", got)
	}

	upper := func(s string) ([]byte, error) { return []byte(strings.ToUpper(s)), nil }
	if keys, err := c.KeysWith("p", upper); err != nil || string(keys[1].Bytes) != "B" || !keys[1].Expires.Equal(exp) {
		t.Errorf("KeysWith = %v, %v", keys, err)
	}

	boom := errors.New("boom")
	for _, tc := range []struct {
		name    string
		secrets []providers.Secret
		decode  func(string) ([]byte, error)
		option  string
		want    error
	}{
		{"nil", nil, nil, "secrets", verify.ErrEmptySecret},
		{"empty-list", []providers.Secret{}, nil, "secrets", verify.ErrEmptySecret},
		{"empty-first", []providers.Secret{{Value: ""}}, nil, "secrets[0]", verify.ErrEmptySecret},
		{"empty-second", []providers.Secret{{Value: "x"}, {Value: ""}}, nil, "secrets[1]", verify.ErrEmptySecret},
		{"decode-error", []providers.Secret{{Value: "ok"}, {Value: "bad-secret-value"}}, func(s string) ([]byte, error) {
			if s == "ok" {
				return []byte(s), nil
			}
			return nil, boom
		}, "secrets[1]", boom},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := providers.Common{Secrets: tc.secrets}
			var err error
			if tc.decode == nil {
				_, err = c.Keys("p")
			} else {
				_, err = c.KeysWith("p", tc.decode)
			}
			var oe *providers.OptionError
			if !errors.As(err, &oe) || oe.Provider != "p" || oe.Option != tc.option || !errors.Is(err, tc.want) {
				t.Fatalf("error %v: want an OptionError of p about %s wrapping %v", err, tc.option, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "p: option "+tc.option+": ") {
				t.Errorf("error %q does not start with the provider and option", err)
			}
			for _, s := range tc.secrets {
				if s.Value != "" && strings.Contains(err.Error(), s.Value) {
					t.Errorf("error %q contains a secret", err)
				}
			}
		})
	}
}

func TestToleranceOr(t *testing.T) {
	if tol, err := (providers.Common{}).ToleranceOr("p", time.Minute); err != nil || tol != time.Minute {
		t.Errorf("ToleranceOr default = %v, %v", tol, err)
	}
	if tol, err := (providers.Common{Tolerance: time.Second}).ToleranceOr("p", time.Minute); err != nil || tol != time.Second {
		t.Errorf("ToleranceOr = %v, %v", tol, err)
	}
	_, err := (providers.Common{Tolerance: -time.Nanosecond}).ToleranceOr("p", time.Minute)
	var oe *providers.OptionError
	if !errors.As(err, &oe) || oe.Option != providers.OptTolerance || oe.Provider != "p" {
		t.Errorf("ToleranceOr(negative) = %v, want an OptionError about tolerance", err)
	}
}

// testOptions has one field of each kind SetOption handles, plus one it
// does not.
type testOptions struct {
	Name    string  `yaml:"name"`
	Flag    bool    `yaml:"flag,omitempty"`
	Count   int     `yaml:"count"`
	Big     int64   `yaml:"big"`
	Ratio   float64 `yaml:"ratio"`
	Skipped string  `yaml:"-"`
}

func (o *testOptions) New(providers.Common) (providers.Adapter, error) { return nil, nil }

func TestOptionKeys(t *testing.T) {
	if got, want := providers.OptionKeys(&testOptions{}), []string{"name", "flag", "count", "big", "ratio"}; !slices.Equal(got, want) {
		t.Errorf("OptionKeys = %q, want %q", got, want)
	}
	none := providers.NoOptions(func(providers.Common) (providers.Adapter, error) { return nil, nil })
	if got := providers.OptionKeys(none); len(got) != 0 {
		t.Errorf("OptionKeys(NoOptions) = %q, want none", got)
	}
}

func TestSetOption(t *testing.T) {
	for _, tc := range []struct {
		key, text string
		check     func(o *testOptions) bool
		errHas    string // "" for success
	}{
		{"name", "hello", func(o *testOptions) bool { return o.Name == "hello" }, ""},
		{"name", "", func(o *testOptions) bool { return o.Name == "" }, ""},
		{"name", "with spaces, {braces} and ünïcode", func(o *testOptions) bool { return o.Name == "with spaces, {braces} and ünïcode" }, ""},
		{"flag", "true", func(o *testOptions) bool { return o.Flag }, ""},
		{"flag", "1", func(o *testOptions) bool { return o.Flag }, ""},
		{"flag", "false", func(o *testOptions) bool { return !o.Flag }, ""},
		{"flag", "yes-secret-text", nil, "flag: want true or false"},
		{"count", "42", func(o *testOptions) bool { return o.Count == 42 }, ""},
		{"count", "-3", func(o *testOptions) bool { return o.Count == -3 }, ""},
		{"count", "4.2", nil, "count: want an integer"},
		{"count", "", nil, "count: want an integer"},
		{"big", "9007199254740993", func(o *testOptions) bool { return o.Big == 9007199254740993 }, ""},
		{"ratio", "0.5", nil, "ratio: unsupported option type float64"},
		{"Name", "x", nil, `unknown key "Name"`},
		{"nope", "x", nil, `unknown key "nope" (this provider's own keys: name, flag, count, big, ratio)`},
	} {
		t.Run(tc.key+"="+tc.text, func(t *testing.T) {
			o := &testOptions{Flag: true}
			err := providers.SetOption(o, tc.key, tc.text)
			if tc.errHas == "" {
				if err != nil {
					t.Fatalf("SetOption: %v", err)
				}
				if !tc.check(o) {
					t.Fatalf("SetOption(%q, %q) left %+v", tc.key, tc.text, *o)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.errHas) {
				t.Fatalf("SetOption(%q, %q) = %v, want an error containing %q", tc.key, tc.text, err, tc.errHas)
			}
			if len(tc.text) > 3 && strings.Contains(err.Error(), tc.text) {
				t.Errorf("error %q repeats the value", err)
			}
			if *o != (testOptions{Flag: true}) {
				t.Errorf("a failed SetOption changed the options: %+v", *o)
			}
		})
	}
}

func TestNoOptions(t *testing.T) {
	called := 0
	none := providers.NoOptions(func(c providers.Common) (providers.Adapter, error) {
		called++
		if c.Tolerance != time.Second {
			t.Errorf("New got %+v", c)
		}
		return nil, errors.New("built")
	})
	err := providers.SetOption(none, "webhook_id", "wh_1")
	if err == nil || !strings.Contains(err.Error(), `unknown key "webhook_id"`) || !strings.Contains(err.Error(), "no options") {
		t.Errorf("SetOption(NoOptions) = %v, want an unknown-key error", err)
	}
	if _, err := none.New(providers.Common{Tolerance: time.Second}); err == nil || err.Error() != "built" || called != 1 {
		t.Errorf("NoOptions.New = %v after %d calls, want the constructor's result", err, called)
	}
}
