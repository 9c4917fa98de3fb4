package config

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"

	"github.com/xrash/smetrics"
	"gopkg.in/yaml.v3"
)

// This file turns yaml.v3's parser and decoder messages ("did not find
// expected key", "cannot unmarshal !!str into config.Source") into words
// that say what is wrong and how to write it, on the line that is wrong.

var typeErrRE = regexp.MustCompile(`^cannot unmarshal (\w+) into (\S+)$`)

// kindMatch picks the offending node of a type error about a mapping or a
// list, whose line is that of its first entry, so that the error names the
// key that holds it.
func kindMatch(msg string) func(*yaml.Node) bool {
	var kind yaml.Kind
	switch {
	case strings.HasPrefix(msg, "cannot unmarshal !!map "):
		kind = yaml.MappingNode
	case strings.HasPrefix(msg, "cannot unmarshal !!seq "):
		kind = yaml.SequenceNode
	default:
		return nil
	}
	return func(n *yaml.Node) bool { return n.Kind == kind }
}

// explainType rewrites "cannot unmarshal str into config.Source" for the
// value at key as "expected a source (...), found a single value: how to
// write it". Other messages are returned unchanged.
func explainType(key, msg string) string {
	m := typeErrRE.FindStringSubmatch(msg)
	if m == nil {
		return msg
	}
	got, want := m[1], m[2]
	gotWords := map[string]string{"str": "a single value", "seq": "a list", "map": "a mapping (key: value lines)",
		"int": "a number", "bool": "true or false", "float": "a number", "null": "nothing"}[got]
	if gotWords == "" {
		gotWords = "a " + got
	}
	last := key
	if i := strings.LastIndexAny(key, ".]"); i >= 0 && i+1 < len(key) {
		last = key[i+1:]
	}
	var wantWords, how string
	switch {
	case strings.HasPrefix(want, "[]"):
		wantWords = "a list"
		if item := itemName(want[2:]); item != "" {
			wantWords = "a list of " + item + "s"
		}
		switch got {
		case "map":
			how = `start each item with "- " (for example "- name: ..."), one below the other`
		default:
			how = fmt.Sprintf(`write [a, b] after "%s:", or one "- item" per line below it`, last)
		}
	case strings.HasPrefix(want, "map["):
		wantWords = "a mapping of names"
		if item := itemName(want[strings.IndexByte(want, ']')+1:]); item != "" {
			wantWords = "a mapping of names to " + item + "s"
		}
		switch got {
		case "seq":
			how = `remove the "- " in front of the names: each name is a key ("name:") with its settings indented below it`
		default:
			how = fmt.Sprintf(`put one "name: value" per line below "%s:", indented`, last)
		}
	case strings.HasPrefix(want, "int") || strings.HasPrefix(want, "uint"):
		wantWords, how = "a whole number", "write digits only, without quotes or units"
	case strings.HasPrefix(want, "float"):
		wantWords, how = "a number", "write digits only, without quotes or units"
	case want == "bool":
		wantWords, how = "true or false", "write true or false without quotes"
	case want == "string":
		wantWords, how = "a single value", "quote it if it holds ': ' or starts with [ or {"
	default:
		name := itemName(want)
		wantWords = "a " + name + ` (a mapping: "key: value" lines)`
		switch got {
		case "seq":
			how = fmt.Sprintf(`remove the "- ": the %s's keys are plain "key: value" lines below "%s:"`, name, last)
		default:
			how = fmt.Sprintf(`put the %s's keys on the lines below "%s:", indented by two more spaces`, name, last)
			if name == "source" {
				how += ` ("provider: ...", "secrets: [...]")`
			}
		}
	}
	return fmt.Sprintf("expected %s, found %s: %s", wantWords, gotWords, how)
}

// itemName is the lower-case name of a config type ("*config.Source" →
// "source"), "" for basic types.
func itemName(t string) string {
	t = strings.TrimPrefix(t, "*")
	name, ok := strings.CutPrefix(t, "config.")
	if !ok {
		return ""
	}
	var b strings.Builder
	for i, r := range name {
		if r >= 'A' && r <= 'Z' {
			if i > 0 {
				b.WriteByte(' ')
			}
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// unknownKeyHint adds to an unknown key's message the nearest known key of
// its mapping, or says that a top-level key probably belongs indented under
// the empty section above it.
func unknownKeyHint(orig *yaml.Node, key, unknown, inType string) string {
	if !strings.Contains(key, ".") && orig != nil && len(orig.Content) > 0 {
		root := orig.Content[0]
		for i := 2; i+1 < len(root.Content); i += 2 {
			if root.Content[i].Value == unknown && root.Content[i-1].Tag == "!!null" {
				return fmt.Sprintf(" (indent it under %q above, which is empty)", root.Content[i-2].Value+":")
			}
		}
	}
	if s := didYouMean(unknown, keysOf(inType)); s != "" {
		return s
	}
	if keys := keysOf(inType); len(keys) > 0 {
		return " (known: " + strings.Join(keys, ", ") + ")"
	}
	return ""
}

// didYouMean is "; did you mean KEY?" for the key of keys nearest to
// unknown (at most two edits away), else "".
func didYouMean(unknown string, keys []string) string {
	best, bestD := "", 3
	for _, k := range keys {
		if d := smetrics.WagnerFischer(unknown, k, 1, 1, 1); d < bestD {
			best, bestD = k, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf("; did you mean %q?", best)
}

// keysOf returns the yaml keys of the config struct type called name
// ("Source"), found from Config by reflection.
func keysOf(name string) []string {
	var found reflect.Type
	seen := map[reflect.Type]bool{}
	var walk func(reflect.Type)
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || seen[t] {
			return
		}
		seen[t] = true
		if t.Name() == name {
			found = t
		}
		for i := range t.NumField() {
			walk(t.Field(i).Type)
		}
	}
	walk(reflect.TypeFor[Config]())
	if found == nil {
		return nil
	}
	var keys []string
	for i := range found.NumField() {
		tag, _, _ := strings.Cut(found.Field(i).Tag.Get("yaml"), ",")
		if tag != "" && tag != "-" {
			keys = append(keys, tag)
		}
	}
	return keys
}

// explainSyntax rewrites a YAML syntax error (err from yamlError over the
// raw data) in words, moving it to the line that is wrong where the
// parser reports an earlier one. Errors it does not know pass unchanged.
func explainSyntax(data []byte, err error) error {
	var e *Error
	if !errors.As(err, &e) || e.Line == 0 {
		return err
	}
	lines := strings.Split(string(data), "\n")
	text := func(n int) string {
		if n < 1 || n > len(lines) {
			return ""
		}
		return lines[n-1]
	}
	switch msg := e.Msg; {
	case strings.Contains(msg, "did not find expected key"), strings.Contains(msg, "did not find expected '-' indicator"):
		if n, why := misindented(lines, e.Line); n > 0 {
			e.Line, e.Msg = n, why
		} else {
			e.Msg = "the indentation does not match the keys around it: keys of one mapping start in the same column, nested keys further right (spaces only)"
		}
	case strings.Contains(msg, "found character that cannot start any token"):
		if l := text(e.Line); strings.Contains(l[:len(l)-len(strings.TrimLeft(l, " \t"))], "\t") {
			e.Msg = "a tab in the indentation: YAML indents with spaces only"
		} else {
			e.Msg = "a value cannot start with this character (such as @ or `): put the value in quotes"
		}
	case strings.Contains(msg, "mapping values are not allowed in this context"):
		e.Msg = `a second ": " on one line: quote the value (for example "Bearer x") or put the inner key on its own line, indented`
		// "provider sketchpen" above a key: a plain value running over two
		// lines, which the parser only notices at the next ": ".
		for n := e.Line - 1; n >= 1; n-- {
			prev := strings.TrimSpace(text(n))
			if prev == "" || strings.HasPrefix(prev, "#") {
				continue
			}
			if !strings.Contains(prev, ":") && !strings.HasPrefix(prev, "-") {
				word, _, _ := strings.Cut(prev, " ")
				e.Line, e.Msg = n, fmt.Sprintf(`a key without ":": write "%s: ..."`, word)
			}
			break
		}
	case strings.Contains(msg, "block sequence entries are not allowed in this context"):
		e.Msg = `a list item ("- ") cannot stand on the line of its key: put each "- item" on its own line below the key, or write [a, b]`
	case strings.Contains(msg, "could not find expected ':'"):
		e.Msg = `a key without ":" (write "key: value"), or a value that runs over several lines (quote it)`
	case strings.Contains(msg, "did not find expected ',' or ']'"):
		e.Msg = "a [ ... ] list that is not closed: separate the items with commas and end it with ]"
	case strings.Contains(msg, "did not find expected ',' or '}'"):
		e.Msg = "a { ... } mapping that is not closed: separate the entries with commas and end it with }"
	case strings.Contains(msg, "found unexpected end of stream"):
		e.Msg = "the file ends inside a quoted value or an open [ or {: close it"
	}
	return e
}

// misindented returns the first line at or after from (1-based) whose
// indentation fits no open mapping, with the reason; 0 if none is found or
// the file has constructs the check does not follow (multi-line flow
// collections).
func misindented(lines []string, from int) (int, string) {
	var stack []int // indentation of the open levels
	opens := true   // the previous line opens a level ("key:", "- key:", "-")
	block := -1     // inside a block scalar ("key: |") indented more than this
	prevKey := ""
	for i, raw := range lines {
		line := strings.TrimRight(raw, " \t\r")
		trimmed := strings.TrimLeft(line, " ")
		ind := len(line) - len(trimmed)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") || trimmed == "---" {
			continue
		}
		if block >= 0 {
			if ind > block {
				continue
			}
			block = -1
		}
		content := trimmed
		if c, _, ok := strings.Cut(content, " #"); ok {
			content = strings.TrimRight(c, " ")
		}
		if strings.Count(content, "[") != strings.Count(content, "]") || strings.Count(content, "{") != strings.Count(content, "}") {
			return 0, ""
		}
		n := i + 1
		switch top := len(stack) - 1; {
		case top < 0:
			stack = append(stack, ind)
		case ind > stack[top]:
			if !opens {
				if n >= from {
					if prevKey == "" {
						return n, `this line is indented more than the list item above it, which already has a value: start it in the same column as that "- "`
					}
					return n, fmt.Sprintf("this line is indented more than the line above, which already has a value: line it up with %q, or remove the value after %q", prevKey, prevKey)
				}
				return 0, ""
			}
			stack = append(stack, ind)
		default:
			for len(stack) > 0 && stack[len(stack)-1] > ind {
				stack = stack[:len(stack)-1]
			}
			if len(stack) == 0 || stack[len(stack)-1] != ind {
				if n >= from {
					return n, fmt.Sprintf("this line's indentation (%d spaces) lines up with no key above it: keys of one mapping start in the same column, nested keys two spaces further right", ind)
				}
				return 0, ""
			}
		}
		item := strings.HasPrefix(content, "- ") || content == "-"
		if item {
			rest := strings.TrimLeft(strings.TrimPrefix(content, "-"), " ")
			if k, v, ok := strings.Cut(rest, ":"); ok && !strings.ContainsAny(k, `"'[{`) {
				// "- key: ..." opens a mapping whose keys line up with "key".
				stack = append(stack, ind+len(content)-len(rest))
				content, prevKey = rest, k+":"
				opens = strings.TrimSpace(v) == ""
			} else {
				opens, prevKey = rest == "", ""
			}
		} else {
			k, v, ok := strings.Cut(content, ":")
			prevKey = k + ":"
			opens = ok && strings.TrimSpace(v) == ""
		}
		if v := strings.TrimSpace(content[strings.IndexByte(content, ':')+1:]); strings.Contains(content, ":") &&
			(strings.HasPrefix(v, "|") || strings.HasPrefix(v, ">")) {
			block = ind
		}
	}
	return 0, ""
}
