package catalogue

import "strings"

// Limits on custom event names, see ValidCustomName.
const (
	maxNameLen   = 100 // bytes
	minNameWords = 2
	maxNameWords = 6
)

// connectors are the lower-case words allowed inside a name: exactly those
// used by catalogue names ("Source Connected to Tracking Plan",
// "User Added via SSO").
var connectors = map[string]bool{"to": true, "via": true}

// ValidCustomName reports whether name is in the catalogue's style, as a
// custom event name must be:
//
//   - at most 100 bytes, ASCII only;
//   - 2 to 6 words separated by single
//     spaces, with no leading or trailing space;
//   - each word an upper-case letter or a digit followed by letters and
//     digits ("Audience", "CSV", "2FA"), or one of the lower-case connector
//     words "to" and "via", which may be neither the first nor the last word.
//
// It does not consult the catalogue: every catalogue name is valid, and
// whether a valid name is custom is for [Lookup] to say.
func ValidCustomName(name string) bool {
	if len(name) > maxNameLen {
		return false
	}
	words := strings.Split(name, " ")
	if len(words) < minNameWords || len(words) > maxNameWords {
		return false
	}
	for i, w := range words {
		if connectors[w] {
			if i == 0 || i == len(words)-1 {
				return false
			}
			continue
		}
		if !validWord(w) {
			return false
		}
	}
	return true
}

// validWord reports whether w is [A-Z0-9][A-Za-z0-9]*.
func validWord(w string) bool {
	if w == "" || !isUpper(w[0]) && !isDigit(w[0]) {
		return false
	}
	for i := 1; i < len(w); i++ {
		if c := w[i]; !isUpper(c) && !isDigit(c) && !('a' <= c && c <= 'z') {
			return false
		}
	}
	return true
}

func isUpper(c byte) bool { return 'A' <= c && c <= 'Z' }
func isDigit(c byte) bool { return '0' <= c && c <= '9' }
