package config

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// decodeStrict decodes the (already expanded) document into cfg, rejecting
// unknown keys. yaml.v3 only honours KnownFields through a Decoder, so the
// node is re-encoded first; line numbers survive because the encoder keeps
// the document's shape, and errors are mapped back through the original
// node's lines (see yamlError).
func decodeStrict(file string, root *yaml.Node, cfg *Config) error {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	if err := enc.Encode(root); err != nil {
		return err
	}
	enc.Close()
	data := buf.Bytes()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil {
		var re yaml.Node
		_ = yaml.Unmarshal(data, &re)
		return yamlError(file, &re, root, err)
	}
	return nil
}

var lineRE = regexp.MustCompile(`^line (\d+): (.*)$`)
var unknownRE = regexp.MustCompile(`^field (\S+) not found in type config\.(\w+)$`)

// valueRE matches the value yaml.v3 quotes in a type error ("cannot
// unmarshal !!str `whsec_a...` into int"): it may come from a ${VAR} holding
// a secret, so it is left out of messages.
var valueRE = regexp.MustCompile(" `[^`]*`")

// yamlError turns a yaml.v3 error into a one-line *Error. Line numbers in
// errors from decodeStrict refer to the re-encoded document; they are mapped
// to key paths there and back to lines of the original.
func yamlError(file string, decoded, orig *yaml.Node, err error) error {
	var te *yaml.TypeError
	msgs := []string{err.Error()}
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msgs = te.Errors
	}
	// Several keys can share a line (flow mappings): match picks the
	// offending value node where the error tells enough to find it.
	var match func(*yaml.Node) bool
	var le *lineError
	if errors.As(err, &le) {
		msgs = []string{fmt.Sprintf("line %d: %s", le.line, le.msg)}
		match = func(n *yaml.Node) bool { return n.Column == le.col }
	}
	first := strings.TrimPrefix(msgs[0], "yaml: ")
	e := &Error{File: file, Msg: first}
	if m := lineRE.FindStringSubmatch(first); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
		e.Msg = m[2]
		var unknown, inType string
		if um := unknownRE.FindStringSubmatch(e.Msg); um != nil {
			unknown, inType = um[1], um[2]
			e.Msg = fmt.Sprintf("unknown key %q", unknown)
		}
		if v := valueRE.FindString(e.Msg); v != "" && match == nil {
			match = quotedValue(strings.Trim(v, " `"))
		}
		if match == nil {
			match = kindMatch(e.Msg)
		}
		e.Msg = valueRE.ReplaceAllString(strings.ReplaceAll(e.Msg, "!!", ""), "")
		if e.Line > 0 && decoded != nil && len(decoded.Content) > 0 {
			if match != nil {
				e.Key = keyOfValue(decoded.Content[0], "", e.Line, match)
			}
			if e.Key == "" {
				e.Key = keyAtLine(decoded.Content[0], "", e.Line)
			}
			if unknown != "" {
				e.Key = trimToKey(e.Key, unknown)
			}
		}
		if unknown != "" {
			e.Msg += unknownKeyHint(orig, e.Key, unknown, inType)
		} else {
			e.Msg = explainType(e.Key, e.Msg)
		}
	}
	if len(msgs) > 1 {
		e.Msg += fmt.Sprintf(" (and %d more)", len(msgs)-1)
	}
	if e.Key != "" && decoded != orig {
		e.Line = lineOf(orig, e.Key)
	}
	return e
}

// quotedValue matches a scalar against the value yaml.v3 quotes in a type
// error: the whole value, or its first 7 bytes and "..." when longer than 10.
func quotedValue(q string) func(*yaml.Node) bool {
	return func(n *yaml.Node) bool {
		if n.Kind != yaml.ScalarNode {
			return false
		}
		if p, ok := strings.CutSuffix(q, "..."); ok && len(n.Value) > 10 {
			return strings.HasPrefix(n.Value, p)
		}
		return n.Value == q
	}
}

// keyOfValue returns the key path of the first mapping value or sequence
// item on line that match accepts, or "".
func keyOfValue(n *yaml.Node, prefix string, line int, match func(*yaml.Node) bool) string {
	visit := func(v *yaml.Node, p string) string {
		if v.Line == line && match(v) {
			return p
		}
		return keyOfValue(v, p, line, match)
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if found := visit(n.Content[i+1], join(prefix, n.Content[i].Value)); found != "" {
				return found
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			if found := visit(c, fmt.Sprintf("%s[%d]", prefix, i)); found != "" {
				return found
			}
		}
	}
	return ""
}

// trimToKey cuts a key path found by line after its last segment named
// name: an unknown key followed on its line by a flow value
// ("secretz: [a]") is reported as "x.secretz", not "x.secretz[0]".
func trimToKey(path, name string) string {
	for i := len(path) - len(name); i >= 0; i-- {
		if path[i:i+len(name)] == name && (i == 0 || path[i-1] == '.') {
			return path[:i+len(name)]
		}
	}
	return path
}

// duplicateKey reports the first mapping key that repeats an earlier key of
// the same mapping, in document order, as yaml.v3 would when decoding into
// a struct or map, but with the lines of the file as written.
func duplicateKey(file string, n *yaml.Node, prefix string) error {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			if err := duplicateKey(file, c, prefix); err != nil {
				return err
			}
		}
	case yaml.MappingNode:
		for j := 0; j+1 < len(n.Content); j += 2 {
			kj := n.Content[j]
			for i := 0; i < j; i += 2 {
				if ki := n.Content[i]; ki.Kind == kj.Kind && ki.Value == kj.Value {
					return &Error{File: file, Line: kj.Line, Key: join(prefix, kj.Value),
						Msg: fmt.Sprintf("mapping key %q already defined at line %d", kj.Value, ki.Line)}
				}
			}
			if err := duplicateKey(file, n.Content[j+1], join(prefix, kj.Value)); err != nil {
				return err
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			if err := duplicateKey(file, c, fmt.Sprintf("%s[%d]", prefix, i)); err != nil {
				return err
			}
		}
	}
	return nil
}

// keyAtLine returns the dotted key path of the mapping key or value at line.
func keyAtLine(n *yaml.Node, prefix string, line int) string {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := join(prefix, k.Value)
			if k.Line == line && (v.Kind == yaml.ScalarNode || v.Line != line) {
				return p
			}
			if found := keyAtLine(v, p, line); found != "" {
				return found
			}
			if v.Kind == yaml.ScalarNode && v.Line == line {
				return p
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			p := fmt.Sprintf("%s[%d]", prefix, i)
			if found := keyAtLine(c, p, line); found != "" {
				return found
			}
			if c.Line == line && c.Kind == yaml.ScalarNode {
				return p
			}
		}
	}
	return ""
}

var indexRE = regexp.MustCompile(`\[(\d+)\]`)

// lineOf returns the line of a dotted key path such as
// "routes[0].targets[1]" or "sources.a.provider"; 0 if not found. The line
// of the closest existing ancestor is returned for a missing key.
func lineOf(root *yaml.Node, key string) int {
	if key == "" || root == nil || len(root.Content) == 0 {
		return 0
	}
	n := root.Content[0]
	line := n.Line
	key = indexRE.ReplaceAllString(key, ".[$1]")
	for _, part := range splitKey(key) {
		var next *yaml.Node
		if strings.HasPrefix(part, "[") {
			i, _ := strconv.Atoi(strings.Trim(part, "[]"))
			if n.Kind == yaml.SequenceNode && i < len(n.Content) {
				next = n.Content[i]
				line = next.Line
			}
		} else if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == part {
					line = n.Content[i].Line // the key's line, not its value's
					next = n.Content[i+1]
					break
				}
			}
		}
		if next == nil {
			return line
		}
		n = next
	}
	return line
}

// splitKey splits on dots, keeping source/target names that contain dots
// intact as far as possible by leaving that to the caller: names are the
// only free-form segments and they are matched greedily in lineOf.
func splitKey(key string) []string {
	var out []string
	for _, p := range strings.Split(key, ".") {
		if p != "" {
			out = append(out, p)
		}
	}
	return out
}

func join(prefix, k string) string {
	if prefix == "" {
		return k
	}
	return prefix + "." + k
}

type envError struct {
	line int
	key  string
	msg  string
}

func (e *envError) Error() string { return e.msg }

// expandEnv replaces ${VAR} and ${VAR:-default} in every scalar value; "$$"
// stands for a literal "$". A bare $VAR (no braces) is an error: it looks
// expanded but would be taken literally.
func expandEnv(n *yaml.Node, path []string, lookup func(string) (string, bool)) error {
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode:
		for i, c := range n.Content {
			p := path
			if n.Kind == yaml.SequenceNode {
				p = append(append([]string(nil), path...), fmt.Sprintf("[%d]", i))
			}
			if err := expandEnv(c, p, lookup); err != nil {
				return err
			}
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := append(append([]string(nil), path...), n.Content[i].Value)
			if err := expandEnv(n.Content[i+1], p, lookup); err != nil {
				return err
			}
		}
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "$") {
			return nil
		}
		v, msg := expandValue(n.Value, lookup)
		if msg != "" {
			return &envError{line: n.Line, key: strings.ReplaceAll(strings.Join(path, "."), ".[", "["), msg: msg}
		}
		n.Value = v
		if n.Style == 0 {
			n.Tag = "" // let the expanded value resolve to int/bool as if written literally
		} else {
			n.Tag = "!!str"
		}
	}
	return nil
}

// expandValue expands one scalar in a single pass, so that values taken
// from the environment are never expanded again. It returns a message
// (without the value, which may hold a secret) for the first mistake.
func expandValue(v string, lookup func(string) (string, bool)) (string, string) {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] != '$' {
			b.WriteByte(v[i])
			continue
		}
		rest := v[i+1:]
		switch {
		case strings.HasPrefix(rest, "$"):
			b.WriteByte('$')
			i++
		case strings.HasPrefix(rest, "{"):
			end := strings.IndexByte(rest, '}')
			if end < 0 {
				return "", "unclosed ${: write ${NAME} or ${NAME:-default} (and $$ for a literal $)"
			}
			name, def, hasDef := strings.Cut(rest[1:end], ":-")
			if name == "" || envNameRE.FindString(name) != name {
				return "", "${...} does not hold a variable name: write ${NAME} or ${NAME:-default} with letters, digits and '_' (and $$ for a literal $)"
			}
			val, ok := lookup(name)
			switch {
			case ok && val != "":
				b.WriteString(val)
			case hasDef:
				b.WriteString(def)
			case !ok:
				return "", fmt.Sprintf("environment variable %s is not set (set it, or write ${%s:-default})", name, name)
			}
			i += end + 1
		default:
			if m := envNameRE.FindString(rest); m != "" {
				if m != strings.ToUpper(m) {
					// Maybe part of a literal secret: do not echo it.
					return "", "a bare $ before a name is not expanded: write ${NAME} for a variable, or $$ for a literal $"
				}
				return "", fmt.Sprintf("$%s is not expanded: write ${%s} (or $$ for a literal $)", m, m)
			}
			b.WriteByte('$') // "$5", "a $ b": no variable meant
		}
	}
	return b.String(), ""
}

var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*`)
