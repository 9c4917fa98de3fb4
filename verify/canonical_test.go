package verify_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hookrelay/hookrelay/verify"
)

// goldenCase is one entry of testdata/canonical/vectors.json, written by
// testdata/canonical/gen.py with real CPython.
type goldenCase struct {
	Name      string  `json:"name"`
	Input     []byte  `json:"input"`     // raw wire bytes (base64 in the file)
	Canonical *string `json:"canonical"` // base64 of json.dumps(json.loads(input), sort_keys=True)
	Error     string  `json:"error"`     // CPython's exception type when it rejects the input
	// Recanonical is CPython's canonical form of Canonical, when that is not
	// Canonical itself (raw UTF-8 surrogates become escapes that pair up).
	Recanonical *string `json:"recanonical"`
}

func loadGolden(t testing.TB) []goldenCase {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "canonical", "vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Python string       `json:"python"`
		Cases  []goldenCase `json:"cases"`
	}
	if err := json.Unmarshal(data, &file); err != nil {
		t.Fatalf("parse vectors.json: %v", err)
	}
	if len(file.Cases) < 45 {
		t.Fatalf("vectors.json holds %d cases, want at least 45", len(file.Cases))
	}
	return file.Cases
}

func TestCanonicalJSONGolden(t *testing.T) {
	for _, tc := range loadGolden(t) {
		t.Run(tc.Name, func(t *testing.T) {
			got, err := verify.CanonicalJSON(tc.Input)
			if tc.Canonical == nil {
				if err == nil {
					t.Fatalf("CanonicalJSON succeeded (%d bytes), CPython raised %s", len(got), tc.Error)
				}
				if !errors.Is(err, verify.ErrInvalidJSON) {
					t.Fatalf("error %v does not wrap ErrInvalidJSON", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("CanonicalJSON: %v", err)
			}
			want, err := base64.StdEncoding.DecodeString(*tc.Canonical)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := string(got), string(want); got != want {
				t.Fatalf("mismatch with CPython\n got: %.300q\nwant: %.300q", got, want)
			}
		})
	}
}

// TestCanonicalJSONGoldenIdempotent feeds CPython's output back in: the
// canonical form of a canonical document is itself, except where CPython
// says otherwise.
func TestCanonicalJSONGoldenIdempotent(t *testing.T) {
	for _, tc := range loadGolden(t) {
		if tc.Canonical == nil {
			continue
		}
		t.Run(tc.Name, func(t *testing.T) {
			in, err := base64.StdEncoding.DecodeString(*tc.Canonical)
			if err != nil {
				t.Fatal(err)
			}
			want := in
			if tc.Recanonical != nil {
				if want, err = base64.StdEncoding.DecodeString(*tc.Recanonical); err != nil {
					t.Fatal(err)
				}
			}
			got, err := verify.CanonicalJSON(in)
			if err != nil {
				t.Fatalf("CanonicalJSON: %v", err)
			}
			if got, want := string(got), string(want); got != want {
				t.Fatalf("not idempotent\n got: %.300q\nwant: %.300q", got, want)
			}
		})
	}
}

func TestCanonicalJSON(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"sorted compact", `{"b":1,"a":[true,null]}`, `{"a": [true, null], "b": 1}`},
		{"negative zero int", `-0`, `0`},
		{"negative zero float", `-0.0`, `-0.0`},
		{"float repr", `[1.0,1E5,1e-5,1e16,1e400,0.1,1.5e300,5e-324,123456789012345.0]`,
			`[1.0, 100000.0, 1e-05, 1e+16, Infinity, 0.1, 1.5e+300, 5e-324, 123456789012345.0]`},
		{"ensure_ascii", "\"é😀\x7f/\\/\"", `"\u00e9\ud83d\ude00\u007f//"`},
		{"lone surrogate", `"\uDFFF\ud800"`, `"\udfff\ud800"`},
		{"last duplicate wins", `{"a":1,"a":2}`, `{"a": 2}`},
		{"astral key after BMP key", `{"😀":1,"\uffff":2}`, `{"\uffff": 2, "\ud83d\ude00": 1}`},
		{"big int", `-123456789012345678901234567890`, `-123456789012345678901234567890`},
		{"utf-8 bom", "\ufeff[]", `[]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := verify.CanonicalJSON([]byte(tt.in))
			if err != nil {
				t.Fatalf("CanonicalJSON: %v", err)
			}
			if got, want := string(got), tt.want; got != want {
				t.Fatalf("got %s, want %s", got, want)
			}
		})
	}
}

func TestCanonicalJSONDepth(t *testing.T) {
	nested := func(n int) []byte {
		return []byte(strings.Repeat(`[{"a":`, n/2) + strings.Repeat("[", n%2) + "1" +
			strings.Repeat("]", n%2) + strings.Repeat("}]", n/2))
	}
	tests := []struct {
		depth int
		ok    bool
	}{
		{1, true},
		{999, true},
		{1000, true},
		{1001, false},
		{1_000_000, false}, // must fail cleanly, not exhaust the stack
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.depth), func(t *testing.T) {
			_, err := verify.CanonicalJSON(nested(tt.depth))
			if got, want := err == nil, tt.ok; got != want {
				t.Fatalf("depth %d: err = %v, want ok=%v", tt.depth, err, want)
			}
			if err != nil && !errors.Is(err, verify.ErrInvalidJSON) {
				t.Fatalf("error %v does not wrap ErrInvalidJSON", err)
			}
		})
	}
}

// TestCanonicalJSONErrorsDoNotEchoInput checks that error messages stay
// short and never quote the body (which may hold personal data).
func TestCanonicalJSONErrorsDoNotEchoInput(t *testing.T) {
	secret := strings.Repeat("SECRETPAYLOAD", 100)
	inputs := []string{
		`{"k":"` + secret + "\n" + `"}`,
		`{"` + secret + `" 1}`,
		`["` + secret + `",]`,
		`"` + secret,
		secret,
		`{"a":"` + secret + `"} ` + secret,
		`"\u12` + secret + `"`,
		"\"" + secret + "\xff\"",
	}
	for i, in := range inputs {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			_, err := verify.CanonicalJSON([]byte(in))
			if err == nil {
				t.Fatal("CanonicalJSON succeeded on invalid input")
			}
			if !errors.Is(err, verify.ErrInvalidJSON) {
				t.Fatalf("error %v does not wrap ErrInvalidJSON", err)
			}
			if !verify.IsBadRequest(err) {
				t.Fatalf("IsBadRequest(%v) = false", err)
			}
			if msg := err.Error(); len(msg) > 120 || strings.Contains(msg, "SECRET") {
				t.Fatalf("error message too revealing: %q", msg)
			}
		})
	}
}

// TestCanonicalJSONDoesNotModifyInput guards against in-place tricks.
func TestCanonicalJSONDoesNotModifyInput(t *testing.T) {
	in := []byte(`{"b":"\u00e9","a":[1.50,-0],"b":"x"}`)
	orig := bytes.Clone(in)
	if _, err := verify.CanonicalJSON(in); err != nil {
		t.Fatal(err)
	}
	if got, want := string(in), string(orig); got != want {
		t.Fatalf("input modified: %q", got)
	}
}

func FuzzCanonicalJSON(f *testing.F) {
	for _, s := range []string{
		`{"b":1,"a":[1.5,-0,1e400,"\ud800\u00e9"],"a":{}}`,
		`[NaN,Infinity,-Infinity,-0.0,5e-324,1e16,0.0001]`,
		"{\"\xf0\x9f\x98\x80\":1,\"\xef\xbf\xbf\":2,\"\xed\xa0\xbd\xed\xb8\x80\":3}",
		"\xef\xbb\xbf{\"x\":\"\x7f\"}",
		"\xff\xfe[\x001\x00]\x00",
		`{"a":{"b":{"c":[[],{},""]}}}`,
		`"\"\\\/\b\f\n\r\t\u0000\u001F"`,
		`123456789012345678901234567890`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := verify.CanonicalJSON(in)
		if err != nil {
			if !errors.Is(err, verify.ErrInvalidJSON) {
				t.Fatalf("error %v does not wrap ErrInvalidJSON", err)
			}
			return
		}
		again, err := verify.CanonicalJSON(out)
		if err != nil {
			t.Fatalf("output %q does not parse: %v", out, err)
		}
		// Lone surrogates written as adjacent \udXXX escapes may pair up
		// when read again (as in CPython); the second round is then final.
		if !bytes.Equal(again, out) && !bytes.Contains(out, []byte(`\ud`)) {
			t.Fatalf("not idempotent:\n once: %q\ntwice: %q", out, again)
		}
		if third, err := verify.CanonicalJSON(again); err != nil || !bytes.Equal(third, again) {
			t.Fatalf("not idempotent:\ntwice: %q\nthrice: %q (%v)", again, third, err)
		}
		for _, b := range out {
			if b < 0x20 || b >= 0x7f {
				t.Fatalf("output %q holds byte %#x", out, b)
			}
		}
		if !bytes.Contains(out, []byte("NaN")) && !bytes.Contains(out, []byte("Infinity")) && !json.Valid(out) {
			t.Fatalf("output %q is not valid JSON", out)
		}
	})
}

// webhookPayload builds a realistic VideoVector-style body of about size
// bytes as a proxy would re-encode it: compact, keys unsorted, raw UTF-8.
func webhookPayload(size int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"id":"evt_01HZX3K9Q2M8V7","event":"video.completed","created_at":"2024-05-01T12:00:00.123Z",` +
		`"data":{"id":"vid_8f2c1e","title":"Café — démo de lancement 🎥","status":"ready","duration":184.52,` +
		`"size_bytes":48234112,"aspect_ratio":"16:9","fps":29.97,"created_by":{"name":"Zoë Ångström","id":4821},` +
		`"thumbnail":"https:\/\/cdn.example.com\/t\/vid_8f2c1e.jpg","metadata":{"project":"spring-launch",` +
		`"locale":"fr-FR","tags":["launch","demo","2024"]},"renditions":[`)
	for i := 0; ; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"url":"https://cdn.example.com/v/vid_8f2c1e/%d.mp4","height":%d,"bitrate":%d,"codec":"h264","ready":true,"score":%g}`,
			i, 240+i%5*240, 800000+i*1000, 0.5+float64(i)/7)
		if b.Len() > size-120 {
			break
		}
	}
	b.WriteString(`]},"account_id":"acc_5521","test":false,"attempt":1,"signature_version":null}`)
	return b.Bytes()
}

func BenchmarkCanonicalJSON(b *testing.B) {
	for _, size := range []int{1 << 10, 64 << 10} {
		payload := webhookPayload(size)
		if _, err := verify.CanonicalJSON(payload); err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(payload)))
			for b.Loop() {
				if _, err := verify.CanonicalJSON(payload); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
