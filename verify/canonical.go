package verify

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"unicode/utf8"
)

// maxCanonicalDepth bounds the nesting of arrays and objects. CPython raises
// RecursionError a little below 1000 levels (the exact depth depends on the
// interpreter version and on the caller's stack), so a document deeper than
// this can never have been produced by json.dumps.
const maxCanonicalDepth = 1000

// maxIntDigits is CPython's default int_max_str_digits (3.11+): json.loads
// refuses integers with more decimal digits than this.
const maxIntDigits = 4300

// CanonicalJSON re-serializes a JSON document exactly as CPython 3 does with
//
//	json.dumps(json.loads(raw), sort_keys=True)
//
// that is: object keys sorted by code point (the last of duplicate keys
// wins), separators ", " and ": ", every character outside printable ASCII
// escaped as \uXXXX (lower-case hex, surrogate pairs above U+FFFF, lone
// surrogates kept), integers of any length kept exact ("-0" becomes "0"),
// numbers with a fraction or an exponent rewritten in Python's float repr
// ("1.0", "1e-05", "1e+16", "-0.0", "Infinity" on overflow), and the
// literals NaN, Infinity and -Infinity accepted and written back.
//
// raw is decoded the way json.loads decodes bytes: UTF-8 (a leading BOM is
// skipped, encoded surrogates are accepted as with "surrogatepass"), or
// UTF-16/UTF-32 when the first bytes say so. Input that CPython rejects
// yields an error wrapping ErrInvalidJSON; the error never quotes the input.
// Nesting deeper than 1000 levels is rejected.
func CanonicalJSON(raw []byte) ([]byte, error) {
	in := raw
	switch enc := detectEncoding(raw); enc {
	case encUTF8:
	case encUTF8BOM:
		in = raw[3:]
	default:
		var err error
		if in, err = transcodeUTF16or32(raw, enc); err != nil {
			return nil, err
		}
	}

	c := canonPool.Get().(*canonicalizer)
	c.in = in
	out, err := c.document()
	c.reset()
	canonPool.Put(c)
	return out, err
}

var canonPool = sync.Pool{New: func() any { return new(canonicalizer) }}

// canonicalizer is the state of one CanonicalJSON call.
//
// It parses the input once and writes every value re-encoded to out, with
// object members in input order. An object whose keys are not already in
// order gets a reorder record; the result is then assembled by one more pass
// that copies out and, at each record, emits the members in key order. Each
// byte is copied at most twice whatever the nesting, where reordering in
// place would move a deep object once for every unsorted ancestor.
type canonicalizer struct {
	in    []byte
	out   []byte // working output, members in input order
	pos   int
	depth int

	// members is a stack of the members of the objects being parsed; each
	// object uses members[base:] and truncates back when it is done.
	members []member
	// keys holds the decoded form of keys that contain escapes.
	keys []byte
	// records lists the objects whose members must be reordered, and
	// sorted their members in output order (last duplicate only).
	records []reorder
	sorted  []member
}

// reorder says that out[start:end] holds one object, braces included,
// whose members are to be written as sorted[first:first+n].
type reorder struct {
	start, end int
	first, n   int
}

// member is one "key": value pair of an object, as written to out. It
// holds no pointers, which keeps sorting free of GC write barriers.
type member struct {
	// The decoded key (UTF-8, surrogates encoded like other code points) is
	// in[key:key+keyLen], or keys[^key:^key+keyLen] when key < 0.
	key, keyLen int
	start, end  int // the member's bytes in out
}

func (c *canonicalizer) keyOf(m *member) []byte {
	if m.key >= 0 {
		return c.in[m.key : m.key+m.keyLen]
	}
	return c.keys[^m.key : ^m.key+m.keyLen]
}

// maxPooledBytes keeps one huge document from pinning memory in the pool.
const maxPooledBytes = 2 << 20

func (c *canonicalizer) reset() {
	c.in = nil
	c.pos, c.depth = 0, 0
	c.out = truncOrDrop(c.out, 1)
	c.keys = truncOrDrop(c.keys, 1)
	c.members = truncOrDrop(c.members, 32)
	c.sorted = truncOrDrop(c.sorted, 32)
	c.records = truncOrDrop(c.records, 32)
}

func truncOrDrop[T any](s []T, size int) []T {
	if cap(s)*size > maxPooledBytes {
		return nil
	}
	return s[:0]
}

func syntaxError(msg string, off int) error {
	return fmt.Errorf("%w: %s at offset %d", ErrInvalidJSON, msg, off)
}

func (c *canonicalizer) document() ([]byte, error) {
	c.skipSpace()
	if err := c.value(); err != nil {
		return nil, err
	}
	c.skipSpace()
	if c.pos != len(c.in) {
		return nil, syntaxError("extra data", c.pos)
	}
	// Dropping duplicates only shortens the output.
	res := make([]byte, 0, len(c.out))
	if len(c.records) == 0 {
		return append(res, c.out...), nil
	}
	// Records were made as objects closed (children before parents). In
	// order of start they come in pre-order: the records of the objects
	// nested in a record's object are the ones right after it.
	slices.SortFunc(c.records, func(a, b reorder) int { return a.start - b.start })
	return c.assemble(res, 0, len(c.out), c.records), nil
}

// firstRecordFrom returns the index of the first record in recs that starts
// at or after pos.
func firstRecordFrom(recs []reorder, pos int) int {
	if len(recs) == 0 || recs[0].start >= pos {
		return 0 // the common cases: no nested records, or already there
	}
	i, _ := slices.BinarySearchFunc(recs, pos, func(r reorder, pos int) int { return r.start - pos })
	return i
}

// assemble appends out[start:end] to dst, writing the members of every
// object that has a reorder record in key order. recs holds (at least) the
// records of the objects within out[start:end], sorted by start.
func (c *canonicalizer) assemble(dst []byte, start, end int, recs []reorder) []byte {
	for {
		recs = recs[firstRecordFrom(recs, start):]
		if len(recs) == 0 || recs[0].start >= end {
			return append(dst, c.out[start:end]...)
		}
		r := recs[0]
		nested := recs[1:]
		nested = nested[:firstRecordFrom(nested, r.end)]
		dst = append(dst, c.out[start:r.start]...)
		dst = append(dst, '{')
		for j, m := range c.sorted[r.first : r.first+r.n] {
			if j > 0 {
				dst = append(dst, ", "...)
			}
			dst = c.assemble(dst, m.start, m.end, nested)
		}
		dst = append(dst, '}')
		start, recs = r.end, recs[1+len(nested):]
	}
}

func (c *canonicalizer) skipSpace() {
	for c.pos < len(c.in) {
		switch c.in[c.pos] {
		case ' ', '\t', '\n', '\r':
			c.pos++
		default:
			return
		}
	}
}

// hasLiteral reports whether in[pos:] starts with lit.
func (c *canonicalizer) hasLiteral(lit string) bool {
	return len(c.in)-c.pos >= len(lit) && string(c.in[c.pos:c.pos+len(lit)]) == lit
}

// literal copies lit, which the input is known to start with, to the output.
func (c *canonicalizer) literal(lit string) {
	c.out = append(c.out, lit...)
	c.pos += len(lit)
}

func (c *canonicalizer) value() error {
	if c.pos >= len(c.in) {
		return syntaxError("expecting value", c.pos)
	}
	switch ch := c.in[c.pos]; ch {
	case '"':
		_, err := c.str()
		return err
	case '{':
		return c.object()
	case '[':
		return c.array()
	case 't', 'f', 'n', 'N', 'I':
		// true, false, null, and CPython's NaN and Infinity.
		for _, lit := range []string{"true", "false", "null", "NaN", "Infinity"} {
			if lit[0] == ch && c.hasLiteral(lit) {
				c.literal(lit)
				return nil
			}
		}
	case '-':
		if c.hasLiteral("-Infinity") {
			c.literal("-Infinity")
			return nil
		}
		return c.number()
	default:
		if ch >= '0' && ch <= '9' {
			return c.number()
		}
	}
	return syntaxError("expecting value", c.pos)
}

func (c *canonicalizer) enter() error {
	c.depth++
	if c.depth > maxCanonicalDepth {
		return syntaxError("nesting too deep", c.pos)
	}
	return nil
}

func (c *canonicalizer) array() error {
	if err := c.enter(); err != nil {
		return err
	}
	c.pos++ // '['
	c.out = append(c.out, '[')
	c.skipSpace()
	if c.pos < len(c.in) && c.in[c.pos] == ']' {
		c.pos++
		c.out = append(c.out, ']')
		c.depth--
		return nil
	}
	for {
		if err := c.value(); err != nil {
			return err
		}
		c.skipSpace()
		if c.pos >= len(c.in) {
			return syntaxError("expecting ',' delimiter", c.pos)
		}
		switch c.in[c.pos] {
		case ']':
			c.pos++
			c.out = append(c.out, ']')
			c.depth--
			return nil
		case ',':
			c.pos++
			c.out = append(c.out, ", "...)
			c.skipSpace()
		default:
			return syntaxError("expecting ',' delimiter", c.pos)
		}
	}
}

func (c *canonicalizer) object() error {
	if err := c.enter(); err != nil {
		return err
	}
	c.pos++ // '{'
	objStart := len(c.out)
	c.out = append(c.out, '{')
	c.skipSpace()
	if c.pos < len(c.in) && c.in[c.pos] == '}' {
		c.pos++
		c.out = append(c.out, '}')
		c.depth--
		return nil
	}
	base := len(c.members)
	for {
		if c.pos >= len(c.in) || c.in[c.pos] != '"' {
			return syntaxError("expecting property name enclosed in double quotes", c.pos)
		}
		m := member{start: len(c.out), key: c.pos + 1}
		escaped, err := c.str()
		if err != nil {
			return err
		}
		m.keyLen = c.pos - 1 - m.key
		if escaped {
			m.key, m.keyLen = c.decodeKey(c.in[m.key : c.pos-1])
		}
		c.skipSpace()
		if c.pos >= len(c.in) || c.in[c.pos] != ':' {
			return syntaxError("expecting ':' delimiter", c.pos)
		}
		c.pos++
		c.out = append(c.out, ": "...)
		c.skipSpace()
		if err := c.value(); err != nil {
			return err
		}
		m.end = len(c.out)
		c.members = append(c.members, m)
		c.skipSpace()
		if c.pos >= len(c.in) {
			return syntaxError("expecting ',' delimiter", c.pos)
		}
		switch c.in[c.pos] {
		case '}':
			c.pos++
			c.out = append(c.out, '}')
			c.finishObject(objStart, base)
			c.members = c.members[:base]
			c.depth--
			return nil
		case ',':
			c.pos++
			c.out = append(c.out, ", "...)
			c.skipSpace()
		default:
			return syntaxError("expecting ',' delimiter", c.pos)
		}
	}
}

// finishObject checks that the members of the object just written from
// out[objStart] on, members[base:], are in key order and, if they are not,
// records the order to write them in, keeping only the last of duplicate
// keys. Keys are compared in their decoded UTF-8 form (with surrogates
// encoded like any other code point), whose byte order is code point order,
// as Python sorts str.
func (c *canonicalizer) finishObject(objStart, base int) {
	ms := c.members[base:]
	sorted := true
	for i := 1; i < len(ms); i++ {
		if bytes.Compare(c.keyOf(&ms[i-1]), c.keyOf(&ms[i])) >= 0 {
			sorted = false
			break
		}
	}
	if sorted {
		return
	}
	r := reorder{start: objStart, end: len(c.out), first: len(c.sorted)}
	// Stable: equal keys stay in input order, so the last duplicate is last.
	if len(ms) <= 16 {
		for i := 1; i < len(ms); i++ {
			for j := i; j > 0 && bytes.Compare(c.keyOf(&ms[j-1]), c.keyOf(&ms[j])) > 0; j-- {
				ms[j-1], ms[j] = ms[j], ms[j-1]
			}
		}
	} else {
		slices.SortStableFunc(ms, func(a, b member) int { return bytes.Compare(c.keyOf(&a), c.keyOf(&b)) })
	}
	for i := range ms {
		if i+1 < len(ms) && bytes.Equal(c.keyOf(&ms[i]), c.keyOf(&ms[i+1])) {
			continue // a later duplicate wins
		}
		c.sorted = append(c.sorted, ms[i])
	}
	r.n = len(c.sorted) - r.first
	c.records = append(c.records, r)
}

// safeASCII marks the bytes that json.dumps writes unescaped.
var safeASCII = func() (t [256]bool) {
	for b := 0x20; b < 0x7f; b++ {
		t[b] = b != '"' && b != '\\'
	}
	return t
}()

const hexDigits = "0123456789abcdef"

// appendEscapedUnit writes the UTF-16 code unit u (u < 0x10000) as json.dumps
// with ensure_ascii does.
func appendEscapedUnit(dst []byte, u rune) []byte {
	switch {
	case u < utf8.RuneSelf && safeASCII[u]:
		return append(dst, byte(u))
	case u == '"':
		return append(dst, '\\', '"')
	case u == '\\':
		return append(dst, '\\', '\\')
	case u == '\b':
		return append(dst, '\\', 'b')
	case u == '\f':
		return append(dst, '\\', 'f')
	case u == '\n':
		return append(dst, '\\', 'n')
	case u == '\r':
		return append(dst, '\\', 'r')
	case u == '\t':
		return append(dst, '\\', 't')
	}
	return append(dst, '\\', 'u', hexDigits[u>>12&0xf], hexDigits[u>>8&0xf], hexDigits[u>>4&0xf], hexDigits[u&0xf])
}

// appendEscapedRune writes the code point r, splitting it into a surrogate
// pair above U+FFFF.
func appendEscapedRune(dst []byte, r rune) []byte {
	if r >= 0x10000 {
		r -= 0x10000
		dst = appendEscapedUnit(dst, 0xd800+(r>>10))
		return appendEscapedUnit(dst, 0xdc00+(r&0x3ff))
	}
	return appendEscapedUnit(dst, r)
}

// decodeRune decodes one code point of UTF-8 at b, also accepting the
// three-byte encoding of a surrogate (U+D800..U+DFFF), as Python's
// "surrogatepass" error handler does. size is 0 for invalid input.
func decodeRune(b []byte) (r rune, size int) {
	r, size = utf8.DecodeRune(b)
	if r != utf8.RuneError || size != 1 {
		return r, size
	}
	if len(b) >= 3 && b[0] == 0xed && b[1]&0xe0 == 0xa0 && b[2]&0xc0 == 0x80 {
		return rune(b[1]&0x3f)<<6 | rune(b[2]&0x3f) | 0xd000, 3
	}
	return 0, 0
}

// hex4 decodes four hex digits (either case); ok is false otherwise.
func hex4(b []byte) (r rune, ok bool) {
	if len(b) < 4 {
		return 0, false
	}
	for _, ch := range b[:4] {
		var d byte
		switch {
		case ch >= '0' && ch <= '9':
			d = ch - '0'
		case ch >= 'a' && ch <= 'f':
			d = ch - 'a' + 10
		case ch >= 'A' && ch <= 'F':
			d = ch - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(d)
	}
	return r, true
}

// str copies the string at pos (which is a '"') to the output, re-escaped,
// and leaves pos after its closing quote. escaped reports whether the string
// contained backslash escapes (so its raw bytes are not its value).
func (c *canonicalizer) str() (escaped bool, err error) {
	// Appending to a local slice spares a GC write barrier per append.
	in, out := c.in, c.out
	i := c.pos + 1
	out = append(out, '"')
	for {
		run := i
		for i < len(in) && safeASCII[in[i]] {
			i++
		}
		out = append(out, in[run:i]...)
		if i >= len(in) {
			return false, syntaxError("unterminated string", c.pos)
		}
		switch ch := in[i]; {
		case ch == '"':
			c.out = append(out, '"')
			c.pos = i + 1
			return escaped, nil
		case ch == '\\':
			escaped = true
			if i+1 >= len(in) {
				return false, syntaxError("unterminated string", c.pos)
			}
			switch e := in[i+1]; e {
			case '"', '\\', '/':
				out = appendEscapedUnit(out, rune(e))
			case 'b':
				out = append(out, '\\', 'b')
			case 'f':
				out = append(out, '\\', 'f')
			case 'n':
				out = append(out, '\\', 'n')
			case 'r':
				out = append(out, '\\', 'r')
			case 't':
				out = append(out, '\\', 't')
			case 'u':
				// A surrogate pair is joined by json.loads and split again
				// by json.dumps, so each escape maps to itself.
				u, ok := hex4(in[i+2:])
				if !ok {
					return false, syntaxError(`invalid \uXXXX escape`, i)
				}
				out = appendEscapedUnit(out, u)
				i += 4
			default:
				return false, syntaxError("invalid escape", i)
			}
			i += 2
		case ch < 0x20:
			return false, syntaxError("invalid control character in string", i)
		case ch == 0x7f:
			out = append(out, `\u007f`...)
			i++
		default:
			r, size := decodeRune(in[i:])
			if size == 0 {
				return false, syntaxError("invalid UTF-8", i)
			}
			out = appendEscapedRune(out, r)
			i += size
		}
	}
}

// decodeKey decodes the body of a string with escapes (already validated
// by str) into c.keys, joining escaped surrogate pairs as json.loads does,
// and returns the member.key and member.keyLen that locate it.
func (c *canonicalizer) decodeKey(raw []byte) (key, keyLen int) {
	k := len(c.keys)
	for i := 0; i < len(raw); {
		ch := raw[i]
		if ch != '\\' {
			c.keys = append(c.keys, ch)
			i++
			continue
		}
		e := raw[i+1]
		i += 2
		switch e {
		case 'b':
			c.keys = append(c.keys, '\b')
		case 'f':
			c.keys = append(c.keys, '\f')
		case 'n':
			c.keys = append(c.keys, '\n')
		case 'r':
			c.keys = append(c.keys, '\r')
		case 't':
			c.keys = append(c.keys, '\t')
		case 'u':
			r, _ := hex4(raw[i:])
			i += 4
			if r >= 0xd800 && r < 0xdc00 && i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
				if r2, ok := hex4(raw[i+2:]); ok && r2 >= 0xdc00 && r2 < 0xe000 {
					r = 0x10000 + (r-0xd800)<<10 + (r2 - 0xdc00)
					i += 6
				}
			}
			c.keys = appendWTF8(c.keys, r)
		default: // '"', '\\', '/'
			c.keys = append(c.keys, e)
		}
	}
	return ^k, len(c.keys) - k
}

// appendWTF8 appends r as UTF-8, encoding surrogates like any other code
// point (utf8.AppendRune would replace them with U+FFFD).
func appendWTF8(dst []byte, r rune) []byte {
	if r >= 0xd800 && r < 0xe000 {
		return append(dst, 0xed, byte(0x80|(r>>6)&0x3f), byte(0x80|r&0x3f))
	}
	return utf8.AppendRune(dst, r)
}

// number copies the number at pos to the output: integers verbatim (but -0
// as 0), anything with a fraction or exponent as a Python float repr.
func (c *canonicalizer) number() error {
	in := c.in
	start := c.pos
	i := start
	if in[i] == '-' {
		i++
	}
	intStart := i
	switch {
	case i < len(in) && in[i] == '0':
		i++
	case i < len(in) && in[i] >= '1' && in[i] <= '9':
		for i < len(in) && in[i] >= '0' && in[i] <= '9' {
			i++
		}
	default:
		return syntaxError("expecting value", start)
	}
	intEnd := i
	isFloat := false
	fracEnd := i
	if i+1 < len(in) && in[i] == '.' && in[i+1] >= '0' && in[i+1] <= '9' {
		isFloat = true
		i += 2
		for i < len(in) && in[i] >= '0' && in[i] <= '9' {
			i++
		}
		fracEnd = i
	}
	hasExp := false
	if i < len(in) && (in[i] == 'e' || in[i] == 'E') {
		j := i + 1
		if j < len(in) && (in[j] == '+' || in[j] == '-') {
			j++
		}
		if j < len(in) && in[j] >= '0' && in[j] <= '9' {
			isFloat, hasExp = true, true
			for j < len(in) && in[j] >= '0' && in[j] <= '9' {
				j++
			}
			i = j
		}
	}
	c.pos = i
	if !isFloat {
		if intEnd-intStart > maxIntDigits {
			return syntaxError("integer has too many digits", start)
		}
		if intEnd-start == 2 && in[start] == '-' && in[start+1] == '0' {
			start++ // -0 is 0
		}
		c.out = append(c.out, in[start:i]...)
		return nil
	}
	if !hasExp && c.shortDecimal(in[start:intEnd], in[intEnd+1:fracEnd]) {
		return nil
	}
	f, err := strconv.ParseFloat(string(in[start:i]), 64)
	if err != nil && !math.IsInf(f, 0) {
		return syntaxError("invalid number", start)
	}
	c.out = appendPyFloat(c.out, f)
	return nil
}

// shortDecimal writes the float written intPart.frac (intPart with its sign,
// no exponent) if it can do so without converting it: when it has at most
// 15 significant digits and its first significant digit is at 10^-4 or
// above. Such a decimal survives the round trip through a double (DBL_DIG
// is 15), so it is the shortest repr itself: Python prints it positionally
// with trailing fractional zeros removed (at least one digit kept).
func (c *canonicalizer) shortDecimal(intPart, frac []byte) bool {
	digits := intPart
	if len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	if len(digits) > 15 {
		return false
	}
	for len(frac) > 1 && frac[len(frac)-1] == '0' {
		frac = frac[:len(frac)-1]
	}
	sig := len(digits) + len(frac) // significant digits, if intPart is not "0"
	if digits[0] == '0' {
		lead := 0
		for lead < len(frac) && frac[lead] == '0' {
			lead++
		}
		if lead == len(frac) { // zero: "0.0" or "-0.0"
			frac = frac[:1]
		} else if lead > 3 { // below 1e-4: Python switches to 1e-05
			return false
		}
		sig = len(frac) - lead
	}
	if sig > 15 {
		return false
	}
	c.out = append(c.out, intPart...)
	c.out = append(c.out, '.')
	c.out = append(c.out, frac...)
	return true
}

// appendPyFloat writes f as Python's float.__repr__ does (and json.dumps for
// the non-finite values): the shortest digits that round-trip, in positional
// notation with at least one fractional digit when the decimal exponent is in
// [-4, 16), in scientific notation with a signed two-digit-minimum exponent
// otherwise.
func appendPyFloat(dst []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, "NaN"...)
	case math.IsInf(f, 1):
		return append(dst, "Infinity"...)
	case math.IsInf(f, -1):
		return append(dst, "-Infinity"...)
	}
	var buf [32]byte
	e := strconv.AppendFloat(buf[:0], f, 'e', -1, 64) // [-]d[.ddd]e±dd[d]
	ePos := bytes.IndexByte(e, 'e')
	exp := 0
	for _, ch := range e[ePos+2:] {
		exp = exp*10 + int(ch-'0')
	}
	if e[ePos+1] == '-' {
		exp = -exp
	}
	if exp < -4 || exp >= 16 {
		return append(dst, e...)
	}
	mant := e[:ePos]
	if mant[0] == '-' {
		dst = append(dst, '-')
		mant = mant[1:]
	}
	// Digits without the decimal point: d0 d1 ... dn, value 0.d0d1... × 10^(exp+1).
	var digits [24]byte
	nd := copy(digits[:], mant[:1])
	if len(mant) > 2 {
		nd += copy(digits[nd:], mant[2:])
	}
	ds := digits[:nd]
	if exp < 0 {
		dst = append(dst, '0', '.')
		for range -exp - 1 {
			dst = append(dst, '0')
		}
		return append(dst, ds...)
	}
	if intDigits := exp + 1; nd > intDigits {
		dst = append(dst, ds[:intDigits]...)
		dst = append(dst, '.')
		return append(dst, ds[intDigits:]...)
	}
	dst = append(dst, ds...)
	for range exp + 1 - nd {
		dst = append(dst, '0')
	}
	return append(dst, '.', '0')
}

// Encodings json.loads detects in bytes (json.detect_encoding).
const (
	encUTF8 = iota
	encUTF8BOM
	encUTF16   // with BOM
	encUTF16BE // without BOM
	encUTF16LE
	encUTF32 // with BOM
	encUTF32BE
	encUTF32LE
)

func detectEncoding(b []byte) int {
	switch {
	case bytes.HasPrefix(b, []byte{0, 0, 0xfe, 0xff}), bytes.HasPrefix(b, []byte{0xff, 0xfe, 0, 0}):
		return encUTF32
	case bytes.HasPrefix(b, []byte{0xfe, 0xff}), bytes.HasPrefix(b, []byte{0xff, 0xfe}):
		return encUTF16
	case bytes.HasPrefix(b, []byte{0xef, 0xbb, 0xbf}):
		return encUTF8BOM
	}
	switch {
	case len(b) >= 4:
		if b[0] == 0 {
			if b[1] != 0 {
				return encUTF16BE
			}
			return encUTF32BE
		}
		if b[1] == 0 {
			if b[2] != 0 || b[3] != 0 {
				return encUTF16LE
			}
			return encUTF32LE
		}
	case len(b) == 2:
		if b[0] == 0 {
			return encUTF16BE
		}
		if b[1] == 0 {
			return encUTF16LE
		}
	}
	return encUTF8
}

// transcodeUTF16or32 decodes raw as Python's codecs do with the
// "surrogatepass" error handler and re-encodes it as UTF-8, lone surrogates
// encoded as three bytes each (which decodeRune accepts).
func transcodeUTF16or32(raw []byte, enc int) ([]byte, error) {
	bigEndian := enc == encUTF16BE || enc == encUTF32BE
	switch enc {
	case encUTF16, encUTF32:
		bigEndian = raw[0] == 0 || raw[0] == 0xfe
		if enc == encUTF16 {
			raw, enc = raw[2:], encUTF16LE
		} else {
			raw, enc = raw[4:], encUTF32LE
		}
	}
	out := make([]byte, 0, len(raw))
	if enc == encUTF32BE || enc == encUTF32LE {
		if len(raw)%4 != 0 {
			return nil, syntaxError("truncated UTF-32", len(raw))
		}
		for i := 0; i < len(raw); i += 4 {
			var u uint32
			if bigEndian {
				u = uint32(raw[i])<<24 | uint32(raw[i+1])<<16 | uint32(raw[i+2])<<8 | uint32(raw[i+3])
			} else {
				u = uint32(raw[i+3])<<24 | uint32(raw[i+2])<<16 | uint32(raw[i+1])<<8 | uint32(raw[i])
			}
			if u > utf8.MaxRune {
				return nil, syntaxError("invalid UTF-32", i)
			}
			out = appendWTF8(out, rune(u))
		}
		return out, nil
	}
	if len(raw)%2 != 0 {
		return nil, syntaxError("truncated UTF-16", len(raw))
	}
	unit := func(i int) rune {
		if bigEndian {
			return rune(raw[i])<<8 | rune(raw[i+1])
		}
		return rune(raw[i+1])<<8 | rune(raw[i])
	}
	for i := 0; i < len(raw); i += 2 {
		u := unit(i)
		if u >= 0xd800 && u < 0xdc00 && i+4 <= len(raw) {
			if u2 := unit(i + 2); u2 >= 0xdc00 && u2 < 0xe000 {
				u = 0x10000 + (u-0xd800)<<10 + (u2 - 0xdc00)
				i += 2
			}
		}
		out = appendWTF8(out, u)
	}
	return out, nil
}
