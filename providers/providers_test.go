package providers_test

import (
	"errors"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/providers"
	"github.com/hookrelay/hookrelay/verify"
)

func TestDecodeObject(t *testing.T) {
	for _, c := range []struct {
		body string
		ok   bool
	}{
		{`{"a": 1}`, true},
		{" {\"a\": 1}\r\n\t ", true},
		{`{}`, true},
		{``, false},
		{`[1]`, false},
		{`null`, false},
		{`{"a": 1} {"b": 2}`, false},
		{`{"a": 1}]`, false},
		{`{"a": 1}}`, false},
		{`{"a": 1} x`, false},
		{`{"a": }`, false},
	} {
		t.Run(c.body, func(t *testing.T) {
			_, err := providers.DecodeObject([]byte(c.body))
			if c.ok && err != nil {
				t.Fatalf("DecodeObject(%q): %v", c.body, err)
			}
			if !c.ok && !errors.Is(err, verify.ErrInvalidJSON) {
				t.Fatalf("DecodeObject(%q) = %v, want ErrInvalidJSON", c.body, err)
			}
		})
	}
}

func TestParseTime(t *testing.T) {
	doc, err := providers.DecodeObject([]byte(`{"unix": 1717243200, "frac": 1717243200.5, "str": "1717243200",
		"iso": "2024-06-01T14:00:00+02:00", "nano": "2024-06-01T12:00:00.123Z", "neg": -5, "huge": 1e300,
		"nan": "NaN", "inf": "Inf", "word": "yesterday", "obj": {}, "bool": true}`))
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1717243200, 0)
	for _, c := range []struct {
		field string
		want  time.Time
	}{
		{"unix", t0},
		{"frac", t0.Add(500 * time.Millisecond)},
		{"str", t0},
		{"iso", t0},
		{"nano", t0.Add(123 * time.Millisecond)},
		{"neg", time.Time{}},
		{"huge", time.Time{}},
		{"nan", time.Time{}},
		{"inf", time.Time{}},
		{"word", time.Time{}},
		{"obj", time.Time{}},
		{"bool", time.Time{}},
		{"absent", time.Time{}},
	} {
		t.Run(c.field, func(t *testing.T) {
			got := providers.ParseTime(doc[c.field])
			if !got.Equal(c.want) {
				t.Fatalf("ParseTime(%v) = %v, want %v", doc[c.field], got, c.want)
			}
			if !got.IsZero() && got.Location() != time.UTC {
				t.Errorf("ParseTime(%v) is in %v, want UTC", doc[c.field], got.Location())
			}
		})
	}
}

func TestJoinKey(t *testing.T) {
	for _, c := range []struct {
		parts []string
		want  string
	}{
		{[]string{"video.completed", "vid_1", "1717243200"}, "video.completed:vid_1:1717243200"},
		{[]string{"video.completed", "", "1717243200"}, ""},
		{[]string{"only"}, "only"},
		{nil, ""},
	} {
		if got := providers.JoinKey(c.parts...); got != c.want {
			t.Errorf("JoinKey(%q) = %q, want %q", c.parts, got, c.want)
		}
	}
}
