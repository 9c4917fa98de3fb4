package verify_test

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"
)

// The rule checked here (docs/architecture.md, "Comparing secrets"): in the
// code that handles secrets, signatures and tokens, such a value is never
// compared with ==, !=, bytes.Equal, strings.EqualFold, strings.Compare or
// the like, whose running time depends on where the first difference is.
// It is compared with hmac.Equal or subtle.ConstantTimeCompare, in
// practice through verify.MatchAny and verify.EqualString.

// ctScanned are the directories (relative to the module root, with their
// sub-directories) whose non-test Go files must follow the rule.
var ctScanned = []string{"verify", "providers", "relay/admin"}

// TestConstantTimeComparisons walks the Go source of ctScanned and fails
// on every comparison of a secret-like value that is not constant-time.
func TestConstantTimeComparisons(t *testing.T) {
	root := moduleRoot(t)
	var files []string
	for _, dir := range ctScanned {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			// Test data and test-helper packages (providertest) compare
			// signatures on purpose.
			if d.IsDir() && (d.Name() == "testdata" || strings.HasSuffix(d.Name(), "test")) {
				return filepath.SkipDir
			}
			if !d.IsDir() && strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") {
				files = append(files, path)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(files) < 10 {
		t.Fatalf("found only %d files under %v: wrong root %s?", len(files), ctScanned, root)
	}
	srcs := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, f)
		srcs[rel] = b
	}
	findings, err := checkConstantTime(srcs)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range findings {
		t.Errorf("%s", f)
	}
	// The primitives the rule routes comparisons through must themselves
	// be built on the constant-time standard functions.
	for fn, want := range map[string]string{"EqualString": "hmac.Equal", "MatchAny": "hmac.Equal", "MatchToken": "EqualString"} {
		if body := funcSource(t, srcs, "verify/", fn); !strings.Contains(body, want) {
			t.Errorf("verify.%s does not call %s", fn, want)
		}
	}
	if body := funcSource(t, srcs, "relay/admin/", "requireToken"); !strings.Contains(body, "subtle.ConstantTimeCompare") && !strings.Contains(body, "verify.EqualString") {
		t.Error("the admin token check calls neither subtle.ConstantTimeCompare nor verify.EqualString")
	}
}

// TestConstantTimeCheckerCatches: the checker flags the breakages it is
// there for, and leaves the usual non-secret comparisons alone.
func TestConstantTimeCheckerCatches(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want int // findings
	}{
		{"admin token ==", `func requireToken(token string) func(r *http.Request) bool {
			want := []byte("Bearer " + token)
			return func(r *http.Request) bool {
				got := []byte(r.Header.Get("Authorization"))
				return string(got) == string(want)
			}
		}`, 1},
		{"admin token bytes.Equal", `func requireToken(token string, r *http.Request) bool {
			return bytes.Equal([]byte(r.Header.Get("Authorization")), []byte("Bearer "+token))
		}`, 1},
		{"header against configured token !=", `func check(h http.Header, token string) bool {
			return h.Get("X-Token") != token
		}`, 1},
		{"MatchAny with bytes.Equal", `func MatchAny(secrets [][]byte, sigs [][]byte, parts ...[]byte) error {
			ok := 0
			for _, key := range secrets {
				mac := HMACSHA256(key, parts...)
				for _, sig := range sigs {
					ok |= boolInt(bytes.Equal(mac, sig))
				}
			}
			if ok == 1 {
				return nil
			}
			return ErrNoValidSignature
		}`, 1},
		{"MatchAny with string ==", `func MatchAny(secrets [][]byte, sigs [][]byte, parts ...[]byte) error {
			for _, key := range secrets {
				for _, s := range sigs {
					if string(HMACSHA256(key, parts...)) == string(s) {
						return nil
					}
				}
			}
			return ErrNoValidSignature
		}`, 1},
		{"EqualString ==", `// EqualString compares two strings in constant time.
		func EqualString(a, b string) bool { return a == b }`, 1},
		{"EqualString on arrays", `// EqualString compares two strings in constant time.
		func EqualString(a, b string) bool {
			ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
			return ha == hb
		}`, 1},
		{"callback value", `func (a *Adapter) verifyCallback(h http.Header) error {
			got := h.Get(a.header)
			if got == "" {
				return Missing(a.header)
			}
			if got != a.value {
				return ErrNoValidSignature
			}
			return nil
		}`, 1},
		{"EqualFold on a received signature", `func f(h http.Header, expected string) bool {
			return strings.EqualFold(h.Get(SignatureHeader), expected)
		}`, 1},
		{"strings.Compare on a secret", `func f(secret, other string) bool { return strings.Compare(secret, other) == 0 }`, 1},
		{"switch on a token", `func f(token, a, b string) int {
			switch token {
			case a:
				return 1
			case "literal":
				return 2
			}
			return 0
		}`, 1},
		{"fine: constant-time and non-secret comparisons", `const SignatureHeader = "X-Sig"
		const SignaturePrefix = "sha256="
		func f(h http.Header, token string, secrets [][]byte, sigHeader, tsHeader string) error {
			v := h.Get(SignatureHeader)
			if v == "" || token == "" || len(secrets) == 0 {
				return ErrMissingHeader
			}
			if len(v) > 7 && strings.EqualFold(v[:7], SignaturePrefix) {
				v = v[7:]
			}
			if !strings.HasPrefix(h.Get("Content-Type"), "application/json") {
				return nil
			}
			if http.CanonicalHeaderKey(sigHeader) == http.CanonicalHeaderKey(tsHeader) {
				return nil
			}
			if subtle.ConstantTimeCompare([]byte(v), []byte(token)) != 1 || !hmac.Equal([]byte(v), secrets[0]) {
				return ErrNoValidSignature
			}
			sig, err := ParsePrefixedHex(SignatureHeader, v, SignaturePrefix)
			if err != nil || sig == nil {
				return err
			}
			return MatchAny(secrets, [][]byte{sig}, nil)
		}`, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			findings, err := checkConstantTime(map[string][]byte{"x.go": []byte("package x\n" + tt.src)})
			if err != nil {
				t.Fatal(err)
			}
			if len(findings) != tt.want {
				t.Errorf("%d findings, want %d: %q", len(findings), tt.want, findings)
			}
		})
	}
}

// secretWords are the words (of an identifier split at camelCase and
// underscores) that name a secret, a signature or a token, or a value
// computed from or compared with one.
var secretWords = map[string]bool{
	"secret": true, "secrets": true, "sig": true, "sigs": true, "signature": true, "signatures": true,
	"token": true, "tokens": true, "mac": true, "macs": true, "hmac": true, "digest": true,
	"password": true, "credential": true, "credentials": true,
	"auth": true, "authorization": true, "cookie": true,
}

// keyQualifiers make "key" name a secret (signingKey, apiKey, hmacKey);
// alone, or as in dedupeKey and a config key, it does not.
var keyQualifiers = map[string]bool{"signing": true, "api": true, "private": true, "hmac": true, "secret": true, "auth": true}

// metaWords, as the last word of an identifier, name something about a
// secret that is not secret: SignatureHeader, sigPrefix, secretName.
var metaWords = map[string]bool{
	"header": true, "headers": true, "prefix": true, "name": true, "names": true, "field": true,
	"len": true, "size": true, "kind": true, "scheme": true, "version": true, "encoding": true,
	"expr": true, "exprs": true, "option": true, "opt": true,
}

// secretHeaderLit matches header names whose values are credentials.
var secretHeaderLit = regexp.MustCompile(`(?i)authorization|cookie|signature|token`)

// constantTime are the calls whose result reveals nothing about their
// arguments' contents; a comparison of their results is fine.
var constantTime = map[string]bool{
	"hmac.Equal": true, "subtle.ConstantTimeCompare": true, "subtle.ConstantTimeEq": true,
	"verify.EqualString": true, "EqualString": true, "verify.MatchAny": true, "MatchAny": true,
	"len": true, "cap": true, "errors.Is": true, "errors.As": true,
}

// variableTime are the comparison functions that must not see a secret.
var variableTime = map[string]bool{
	"bytes.Equal": true, "bytes.EqualFold": true, "bytes.Compare": true, "bytes.HasPrefix": true,
	"bytes.HasSuffix": true, "bytes.Contains": true, "bytes.Index": true,
	"strings.EqualFold": true, "strings.Compare": true, "strings.HasPrefix": true,
	"strings.HasSuffix": true, "strings.Contains": true, "strings.Index": true,
	"slices.Equal": true, "slices.Compare": true, "reflect.DeepEqual": true, "cmp.Compare": true,
}

func identWords(name string) []string {
	var words []string
	var cur []rune
	rs := []rune(name)
	for i, r := range rs {
		switch {
		case r == '_':
			if len(cur) > 0 {
				words, cur = append(words, string(cur)), nil
			}
			continue
		case unicode.IsUpper(r) && len(cur) > 0 &&
			(unicode.IsLower(rs[i-1]) || (i+1 < len(rs) && unicode.IsLower(rs[i+1]))):
			words, cur = append(words, string(cur)), nil
		}
		cur = append(cur, unicode.ToLower(r))
	}
	if len(cur) > 0 {
		words = append(words, string(cur))
	}
	return words
}

// secretName reports whether an identifier names a secret-like value.
func secretName(name string) bool {
	w := identWords(name)
	if len(w) == 0 || metaWords[w[len(w)-1]] || slices.Contains(w, "dedupe") {
		return false
	}
	if (slices.Contains(w, "key") || slices.Contains(w, "keys")) && slices.ContainsFunc(w, func(s string) bool { return keyQualifiers[s] }) {
		return true
	}
	return slices.ContainsFunc(w, func(s string) bool { return secretWords[s] })
}

// ctChecker holds what checkConstantTime knows across files.
type ctChecker struct {
	fset   *token.FileSet
	consts map[string]bool // names of package-level constants
	out    []string
}

// checkConstantTime parses srcs (file name -> Go source) and returns one
// finding per variable-time comparison of a secret-like value.
//
// Secret-like: an identifier or field named after a secret (secretName);
// a parameter of a function whose doc comment promises "constant time";
// a request header value (h.Get, r.Header.Get, h[...], h.Values); and,
// within a function, every variable assigned or ranged over from an
// expression that mentions one of those. The results of the constant-time
// functions, len and errors.Is are not secret. A comparison with a literal,
// nil or a constant reveals nothing and is allowed.
func checkConstantTime(srcs map[string][]byte) ([]string, error) {
	c := &ctChecker{fset: token.NewFileSet(), consts: map[string]bool{}}
	var files []*ast.File
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range srcs {
			if !yield(k) {
				return
			}
		}
	}) {
		f, err := parser.ParseFile(c.fset, name, srcs[name], parser.ParseComments)
		if err != nil {
			return nil, err
		}
		files = append(files, f)
		for _, d := range f.Decls {
			if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.CONST {
				for _, s := range g.Specs {
					for _, n := range s.(*ast.ValueSpec).Names {
						c.consts[n.Name] = true
					}
				}
			}
		}
	}
	for _, f := range files {
		for _, d := range f.Decls {
			if fd, ok := d.(*ast.FuncDecl); ok && fd.Body != nil {
				c.checkFunc(fd)
			}
		}
	}
	return c.out, nil
}

// funcTaint is the set of local names holding secret-like values.
type funcTaint map[string]bool

func (c *ctChecker) checkFunc(fd *ast.FuncDecl) {
	taint := funcTaint{}
	promise := fd.Doc != nil && regexp.MustCompile(`(?i)constant[- ]time`).MatchString(fd.Doc.Text())
	addParams := func(fl *ast.FieldList) {
		if fl == nil {
			return
		}
		for _, f := range fl.List {
			for _, n := range f.Names {
				if promise || secretName(n.Name) {
					taint[n.Name] = true
				}
			}
		}
	}
	addParams(fd.Type.Params)
	// Propagate through assignments and ranges until nothing changes.
	for changed := true; changed; {
		changed = false
		mark := func(e ast.Expr) {
			if id, ok := e.(*ast.Ident); ok && id.Name != "_" && !taint[id.Name] {
				taint[id.Name] = true
				changed = true
			}
		}
		ast.Inspect(fd.Body, func(n ast.Node) bool {
			switch s := n.(type) {
			case *ast.FuncLit:
				addParams(s.Type.Params)
			case *ast.AssignStmt:
				if slices.ContainsFunc(s.Rhs, func(e ast.Expr) bool { return c.secret(e, taint) }) {
					for _, l := range s.Lhs {
						mark(l)
					}
				}
			case *ast.ValueSpec:
				if slices.ContainsFunc(s.Values, func(e ast.Expr) bool { return c.secret(e, taint) }) {
					for _, l := range s.Names {
						mark(l)
					}
				}
			case *ast.RangeStmt:
				if c.secret(s.X, taint) {
					if s.Key != nil {
						mark(s.Key)
					}
					if s.Value != nil {
						mark(s.Value)
					}
				}
			}
			return true
		})
	}
	ast.Inspect(fd.Body, func(n ast.Node) bool {
		switch e := n.(type) {
		case *ast.BinaryExpr:
			if (e.Op == token.EQL || e.Op == token.NEQ) && !c.public(e.X) && !c.public(e.Y) &&
				(c.secret(e.X, taint) || c.secret(e.Y, taint)) {
				c.report(e.OpPos, fmt.Sprintf("%s on a secret-like value in %s; use verify.EqualString or hmac.Equal", e.Op, fd.Name.Name))
			}
		case *ast.CallExpr:
			if name := callName(e); variableTime[name] &&
				!slices.ContainsFunc(e.Args, c.public) && slices.ContainsFunc(e.Args, func(a ast.Expr) bool { return c.secret(a, taint) }) {
				c.report(e.Lparen, fmt.Sprintf("%s on a secret-like value in %s; use verify.EqualString or hmac.Equal", name, fd.Name.Name))
			}
		case *ast.SwitchStmt:
			if e.Tag != nil && c.secret(e.Tag, taint) {
				for _, cl := range e.Body.List {
					if slices.ContainsFunc(cl.(*ast.CaseClause).List, func(x ast.Expr) bool { return !c.public(x) }) {
						c.report(e.Switch, fmt.Sprintf("switch on a secret-like value in %s", fd.Name.Name))
						break
					}
				}
			}
		}
		return true
	})
}

func (c *ctChecker) report(pos token.Pos, msg string) {
	c.out = append(c.out, fmt.Sprintf("%s: %s", c.fset.Position(pos), msg))
}

// public reports whether e is a literal, nil, a boolean, a constant or a
// sentinel error: comparing with it reveals nothing secret.
func (c *ctChecker) public(e ast.Expr) bool {
	switch x := ast.Unparen(e).(type) {
	case *ast.BasicLit:
		return true
	case *ast.Ident:
		return x.Name == "nil" || x.Name == "true" || x.Name == "false" || c.consts[x.Name] || strings.HasPrefix(x.Name, "Err")
	case *ast.SelectorExpr:
		return c.consts[x.Sel.Name] || strings.HasPrefix(x.Sel.Name, "Err")
	}
	return false
}

// secret reports whether e mentions a secret-like value.
func (c *ctChecker) secret(e ast.Expr, taint funcTaint) bool {
	found := false
	ast.Inspect(e, func(n ast.Node) bool {
		if found {
			return false
		}
		switch x := n.(type) {
		case *ast.FuncLit:
			return false
		case *ast.CompositeLit:
			// A struct holding a secret is not one: its fields are judged
			// by their names where they are read (a.secrets, a.prefix).
			switch x.Type.(type) {
			case *ast.Ident, *ast.SelectorExpr:
				return false
			}
		case *ast.Ident:
			if !c.consts[x.Name] && (taint[x.Name] || secretName(x.Name)) {
				found = true
			}
		case *ast.BasicLit:
			if x.Kind == token.STRING && secretHeaderLit.MatchString(x.Value) {
				found = true
			}
		case *ast.SelectorExpr:
			if (!c.consts[x.Sel.Name] && secretName(x.Sel.Name)) || c.secret(x.X, taint) {
				found = true
			}
			return false
		case *ast.IndexExpr:
			if headerValue(x.X) {
				found = true
			}
		case *ast.CallExpr:
			name := callName(x)
			if constantTime[name] {
				return false
			}
			if sel, ok := x.Fun.(*ast.SelectorExpr); ok && (sel.Sel.Name == "Get" || sel.Sel.Name == "Values") && headerValue(sel.X) {
				found = true
				return false
			}
			// The callee's name says nothing about its result (Sign, Get).
			for _, a := range x.Args {
				if c.secret(a, taint) {
					found = true
				}
			}
			if sel, ok := x.Fun.(*ast.SelectorExpr); ok && c.secret(sel.X, taint) {
				found = true
			}
			return false
		}
		return !found
	})
	return found
}

// headerValue reports whether e is a request's headers: h, hdr, header,
// headers or anything.Header.
func headerValue(e ast.Expr) bool {
	switch x := ast.Unparen(e).(type) {
	case *ast.Ident:
		return x.Name == "h" || x.Name == "hdr" || x.Name == "header" || x.Name == "headers"
	case *ast.SelectorExpr:
		return x.Sel.Name == "Header"
	}
	return false
}

// callName is "pkg.Func" or "Func" for a call, "" for other callees.
func callName(call *ast.CallExpr) string {
	switch f := call.Fun.(type) {
	case *ast.Ident:
		return f.Name
	case *ast.SelectorExpr:
		if id, ok := f.X.(*ast.Ident); ok {
			return id.Name + "." + f.Sel.Name
		}
	}
	return ""
}

// funcSource returns the source text of the top-level function name in
// the files of srcs under dir.
func funcSource(t *testing.T, srcs map[string][]byte, dir, name string) string {
	t.Helper()
	for path, src := range srcs {
		if !strings.HasPrefix(filepath.ToSlash(path), dir) {
			continue
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, "", src, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			if fd, ok := d.(*ast.FuncDecl); ok && fd.Recv == nil && fd.Name.Name == name {
				return string(src[fset.Position(fd.Pos()).Offset:fset.Position(fd.End()).Offset])
			}
		}
	}
	t.Fatalf("no function %s in %s", name, dir)
	return ""
}

// moduleRoot is the directory holding go.mod, above the working directory.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the working directory")
		}
		dir = parent
	}
}
