package envelope

import (
	"encoding/binary"
	"errors"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// This file holds a small JSON reader used by the envelope decoder. The
// envelope is decoded by hand rather than through encoding/json because:
//   - one pass over the bytes both validates the data and locates it, where
//     json.Unmarshal scans the input twice and Validate would scan the data a
//     third time (the data is most of the bytes of every message);
//   - keys are matched exactly (encoding/json matches "ID" and "Id" to id) and
//     a repeated key is refused (encoding/json keeps the last one), so the
//     headers and the payload cannot be made to disagree by such tricks.
// FuzzEnvelopeUnmarshal checks it against encoding/json.

// maxDepth bounds the nesting of JSON values, as encoding/json does, so that
// a hostile payload cannot exhaust the stack.
const maxDepth = 10000

// errSyntax is the cause of every JSON syntax error; it is wrapped in
// ErrMalformed with the offset.
var errSyntax = errors.New("invalid JSON")

type syntaxError struct {
	msg    string
	offset int
}

func (e *syntaxError) Error() string {
	return errSyntax.Error() + ": " + e.msg + " at offset " + strconv.Itoa(e.offset)
}

func (e *syntaxError) Unwrap() error { return errSyntax }

// stringByte[c] is true for the bytes that end the fast scan of a JSON
// string: the closing quote, the escape character and the control bytes.
var stringByte = func() (t [256]bool) {
	for c := 0; c < 0x20; c++ {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// skipValue checks the JSON value starting at b[i] (no leading space) and
// returns the offset just past it. It does not check UTF-8: callers check the
// whole input once with utf8.Valid, which is faster than doing it per string.
func skipValue(b []byte, i, depth int) (int, error) {
	if i >= len(b) {
		return i, &syntaxError{"unexpected end of input", i}
	}
	switch c := b[i]; {
	case c == '"':
		end, _, err := scanString(b, i)
		return end, err
	case c == '{':
		return skipObject(b, i, depth+1)
	case c == '[':
		return skipArray(b, i, depth+1)
	case c == '-' || c >= '0' && c <= '9':
		return scanNumber(b, i)
	case c == 't':
		return scanLiteral(b, i, "true")
	case c == 'f':
		return scanLiteral(b, i, "false")
	case c == 'n':
		return scanLiteral(b, i, "null")
	default:
		return i, &syntaxError{"unexpected character " + strconv.QuoteRune(rune(c)), i}
	}
}

func scanLiteral(b []byte, i int, lit string) (int, error) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return i, &syntaxError{"invalid literal, want " + lit, i}
	}
	return i + len(lit), nil
}

func skipObject(b []byte, i, depth int) (int, error) {
	if depth > maxDepth {
		return i, &syntaxError{"nesting too deep", i}
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, nil
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return i, &syntaxError{"want an object key", i}
		}
		end, _, err := scanString(b, i)
		if err != nil {
			return end, err
		}
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return i, &syntaxError{"want ':' after object key", i}
		}
		i = skipSpace(b, i+1)
		if i, err = skipValue(b, i, depth); err != nil {
			return i, err
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return i, &syntaxError{"unexpected end of input in object", i}
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return i + 1, nil
		default:
			return i, &syntaxError{"want ',' or '}' in object", i}
		}
	}
}

func skipArray(b []byte, i, depth int) (int, error) {
	if depth > maxDepth {
		return i, &syntaxError{"nesting too deep", i}
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		return i + 1, nil
	}
	for {
		var err error
		if i, err = skipValue(b, i, depth); err != nil {
			return i, err
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return i, &syntaxError{"unexpected end of input in array", i}
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case ']':
			return i + 1, nil
		default:
			return i, &syntaxError{"want ',' or ']' in array", i}
		}
	}
}

// scanNumber checks the JSON number grammar:
// -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?
func scanNumber(b []byte, i int) (int, error) {
	start := i
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = skipDigits(b, i+1)
	default:
		return i, &syntaxError{"invalid number", start}
	}
	if i < len(b) && b[i] == '.' {
		j := skipDigits(b, i+1)
		if j == i+1 {
			return j, &syntaxError{"invalid number: no digit after '.'", start}
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := skipDigits(b, i)
		if j == i {
			return j, &syntaxError{"invalid number: no digit in exponent", start}
		}
		i = j
	}
	return i, nil
}

func skipDigits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

// scanString checks the JSON string starting at the quote b[i] and returns
// the offset past its closing quote and whether it holds escapes.
func scanString(b []byte, i int) (end int, escaped bool, err error) {
	start := i
	i++
	for {
		// Most of a payload is string content: skip it eight bytes at a time
		// while no byte can end the fast scan, then byte by byte.
		for i+8 <= len(b) && !hasStringByte(binary.LittleEndian.Uint64(b[i:])) {
			i += 8
		}
		for i < len(b) && !stringByte[b[i]] {
			i++
		}
		if i >= len(b) {
			return i, escaped, &syntaxError{"unterminated string", start}
		}
		switch c := b[i]; {
		case c == '"':
			return i + 1, escaped, nil
		case c == '\\':
			escaped = true
			if i+1 >= len(b) {
				return i, escaped, &syntaxError{"unterminated string", start}
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if len(b)-i < 6 || !isHex4(b[i+2:i+6]) {
					return i, escaped, &syntaxError{"invalid \\u escape", i}
				}
				i += 6
			default:
				return i, escaped, &syntaxError{"invalid escape", i}
			}
		default:
			return i, escaped, &syntaxError{"control character in string", i}
		}
	}
}

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// hasStringByte reports whether one of the eight bytes of x may be a
// stringByte (a '"', a '\\' or a control byte). It may report a false
// positive, never a false negative: its caller then looks byte by byte.
// (The bit tricks are the classic "determine if a word has a byte less
// than n" and "has a zero byte" of Sean Anderson's Bit Twiddling Hacks.)
func hasStringByte(x uint64) bool {
	return (lessThan(x, 0x20)|zeroByte(x^(ones*'"'))|zeroByte(x^(ones*'\\')))&highs != 0
}

// lessThan sets the high bit of some byte when a byte of x is < n (n <= 128).
func lessThan(x uint64, n uint64) uint64 { return (x - ones*n) &^ x }

// zeroByte sets the high bit of some byte when a byte of x is zero.
func zeroByte(x uint64) uint64 { return (x - ones) &^ x }

func isHex4(b []byte) bool {
	for _, c := range b[:4] {
		if _, ok := unhex(c); !ok {
			return false
		}
	}
	return true
}

func unhex(c byte) (rune, bool) {
	switch {
	case c >= '0' && c <= '9':
		return rune(c - '0'), true
	case c >= 'a' && c <= 'f':
		return rune(c - 'a' + 10), true
	case c >= 'A' && c <= 'F':
		return rune(c - 'A' + 10), true
	}
	return 0, false
}

func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		v, _ := unhex(c)
		r = r<<4 | v
	}
	return r
}

// unquote decodes the contents of a JSON string already checked by
// scanString (q is the text between the quotes). It resolves escapes as
// encoding/json does, including a lone surrogate becoming U+FFFD.
func unquote(q []byte) string {
	out := make([]byte, 0, len(q))
	for i := 0; i < len(q); {
		c := q[i]
		if c != '\\' {
			out = append(out, c)
			i++
			continue
		}
		switch q[i+1] {
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r := hex4(q[i+2:])
			i += 6
			if utf16.IsSurrogate(r) {
				r2 := utf8.RuneError
				if len(q)-i >= 6 && q[i] == '\\' && q[i+1] == 'u' {
					r2 = hex4(q[i+2:])
				}
				if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
					r = dec
					i += 6
				} else {
					r = utf8.RuneError
				}
			}
			out = utf8.AppendRune(out, r)
			continue
		default: // '"', '\\', '/'
			out = append(out, q[i+1])
		}
		i += 2
	}
	return string(out)
}

// validJSON reports whether b is exactly one JSON value, surrounded by
// optional whitespace, in valid UTF-8.
func validJSON(b []byte) error {
	if !utf8.Valid(b) {
		return ErrInvalidUTF8
	}
	return validJSONSyntax(b)
}

func validJSONSyntax(b []byte) error {
	i, err := skipValue(b, skipSpace(b, 0), 0)
	if err != nil {
		return err
	}
	if i = skipSpace(b, i); i != len(b) {
		return &syntaxError{"data after the JSON value", i}
	}
	return nil
}
