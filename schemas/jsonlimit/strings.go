package jsonlimit

import (
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// String helpers: the SWAR scan for bytes that need a closer look, and
// decoding of escape sequences.

// SWAR constants: a byte's value in every byte.
const (
	ones  = 0x0101010101010101
	highs = 0x80 * ones
)

// Specials marks, in the high bit of each byte of x, the bytes that need a
// closer look in a string: below 0x20, a quote, a backslash, DEL, or any
// byte of a multi-byte sequence (0x80 and above). Only the lowest mark is
// exact (a borrow may set higher ones); zero means none. The event
// codec's fast path scans strings with it too.
func Specials(x uint64) uint64 {
	q, bs := x^('"'*ones), x^('\\'*ones) // matching bytes become zero
	// (x&^highs)+ones sets the high bit of bytes whose low seven bits are
	// all ones (DEL, 0xff) without a carry into the next byte; x itself
	// has it in bytes 0x80 and above.
	return ((x-0x20*ones)&^x | x | (x&^highs + ones) | (q-ones)&^q | (bs-ones)&^bs) & highs
}

func hex4(b []byte) (rune, bool) {
	var r rune
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// unescape decodes the contents of a string already checked by str, as
// the JSON decoders do: a lone surrogate becomes U+FFFD.
func unescape(raw string) string {
	var b strings.Builder
	b.Grow(len(raw))
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' {
			b.WriteByte(c)
			i++
			continue
		}
		switch e := raw[i+1]; e {
		case 'u':
			r, _ := hex4([]byte(raw[i+2 : i+6]))
			i += 6
			if utf16.IsSurrogate(r) {
				if i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
					if r2, ok := hex4([]byte(raw[i+2 : i+6])); ok {
						if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
							b.WriteRune(d)
							i += 6
							continue
						}
					}
				}
				r = utf8.RuneError
			}
			b.WriteRune(r)
		case 't':
			b.WriteByte('\t')
			i += 2
		case 'n':
			b.WriteByte('\n')
			i += 2
		case 'r':
			b.WriteByte('\r')
			i += 2
		default: // '"', '\\', '/'
			b.WriteByte(e)
			i += 2
		}
	}
	return b.String()
}
