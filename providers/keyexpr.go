package providers

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// KeyExpr is one part of a dedupe-key override: "header:NAME" takes a request
// header, "json:dotted.path" a field of the JSON body.
type KeyExpr struct {
	Kind string // "header" or "json"
	Name string // header name, or dotted path
}

// ParseKeyExprs parses the `dedupe_key:` list of a source.
func ParseKeyExprs(exprs []string) ([]KeyExpr, error) {
	out := make([]KeyExpr, 0, len(exprs))
	for _, e := range exprs {
		kind, name, ok := strings.Cut(e, ":")
		name = strings.TrimSpace(name)
		if !ok || name == "" || (kind != "header" && kind != "json") {
			return nil, fmt.Errorf("dedupe key %q: want header:NAME or json:dotted.path", e)
		}
		out = append(out, KeyExpr{Kind: kind, Name: name})
	}
	return out, nil
}

// DedupeKey evaluates exprs against a request and joins the parts with ":".
// It returns "" if every part is empty. body may be nil if no expr is "json".
func DedupeKey(exprs []KeyExpr, h http.Header, body map[string]any) string {
	parts := make([]string, len(exprs))
	any := false
	for i, e := range exprs {
		switch e.Kind {
		case "header":
			parts[i] = h.Get(e.Name)
		case "json":
			parts[i] = Field(body, e.Name)
		}
		if parts[i] != "" {
			any = true
		}
	}
	if !any {
		return ""
	}
	return strings.Join(parts, ":")
}

// Lookup follows a dotted path ("data.video_id") through decoded JSON
// objects. It returns nil if any step is missing or not an object.
func Lookup(v map[string]any, path string) any {
	var cur any = v
	for _, k := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[k]
	}
	return cur
}

// Scalar renders a decoded JSON scalar as a string: strings as they are,
// numbers in their JSON spelling (decode with UseNumber), booleans as
// true/false; nil, objects and arrays as "".
func Scalar(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case float64:
		return strings.TrimSuffix(fmt.Sprintf("%f", x), ".000000")
	case bool:
		if x {
			return "true"
		}
		return "false"
	}
	return ""
}

// Field returns the scalar at a dotted path of a decoded body as a string
// ("" if it is absent or not a scalar): Scalar(Lookup(doc, path)).
func Field(doc map[string]any, path string) string {
	return Scalar(Lookup(doc, path))
}

// JoinKey joins the parts of a default dedupe key with ":". It returns "" if
// any part is empty: a key built from some of its fields would merge
// distinct events, so the caller falls back to the body hash instead.
func JoinKey(parts ...string) string {
	for _, p := range parts {
		if p == "" {
			return ""
		}
	}
	return strings.Join(parts, ":")
}
