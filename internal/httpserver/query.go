package httpserver

import (
	"net/url"
	"strings"
	"unicode"

	"github.com/labstack/echo/v4"
)

// validQuery answers 400 naming the parameter when the query string cannot
// be read as key=value pairs separated by '&'. echo's QueryParams (and Go's
// URL.Query) silently drop what they cannot parse, which would turn
// "?limit=%zz" or "?since=x;until=y" into a request without that filter.
func validQuery(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if err := CheckQuery(c.Request().URL.RawQuery); err != nil {
			return err
		}
		return next(c)
	}
}

// CheckQuery reports the first malformed parameter of a raw query string:
// a ';' separator or an invalid percent-encoding in a key or a value.
func CheckQuery(raw string) *Error {
	for piece := range strings.SplitSeq(raw, "&") {
		if piece == "" {
			continue
		}
		rawKey, rawValue, _ := strings.Cut(piece, "=")
		key, kerr := url.QueryUnescape(rawKey)
		if kerr != nil {
			key = rawKey
		}
		field := paramName(key)
		switch {
		case strings.Contains(piece, ";"):
			return BadRequest(field, "separate query parameters with '&' and write a literal ';' as %3B")
		case kerr != nil:
			return BadRequest(field, "the parameter name has an invalid percent-encoding")
		}
		if _, err := url.QueryUnescape(rawValue); err != nil {
			return BadRequest(field, "the value has an invalid percent-encoding (write '%' as %25)")
		}
	}
	return nil
}

// paramName is a parameter name fit to name in an error: printable, at most
// 64 bytes, else "query".
func paramName(key string) string {
	key, _, _ = strings.Cut(key, ";")
	if key == "" || len(key) > 64 || strings.ContainsFunc(key, func(r rune) bool { return !unicode.IsPrint(r) }) {
		return "query"
	}
	return key
}
