package httpserver

import (
	"net/url"

	"github.com/labstack/echo/v4"
)

// unescapePath gives handlers the path parameters decoded. echo routes on
// the escaped path when the request has one (URL.RawPath), and then its
// parameters keep their escapes: /events/a%3Ab would be the id "a%3Ab",
// not the "a:b" the client meant. A parameter whose escapes do not decode
// (Go's server refuses such a URL before) is left as it is.
func unescapePath(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if c.Request().URL.RawPath != "" {
			values := c.ParamValues()
			decoded := make([]string, len(values))
			for i, v := range values {
				if d, err := url.PathUnescape(v); err == nil {
					decoded[i] = d
				} else {
					decoded[i] = v
				}
			}
			c.SetParamValues(decoded...)
		}
		return next(c)
	}
}
