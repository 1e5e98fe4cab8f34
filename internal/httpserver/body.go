package httpserver

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"

	"github.com/labstack/echo/v4"
)

// drainLimit bounds how much of an oversized body ReadBody reads and
// discards before it answers 413.
const drainLimit = 32 << 20

// ReadBody reads the request body, at most limit bytes. A larger body is a
// 413 *Error: before answering, ReadBody reads and discards the rest of the
// body (up to 32 MiB more), so that a client that sends its whole body
// before it reads the answer reads the 413 instead of a connection reset
// (closing a socket with unread data resets it). A body larger still gets
// the 413 with the connection closed. A body that stops arriving before a
// read deadline (the server's, or SetReadDeadline's) is a 408 with the
// connection closed; one that cannot be read otherwise (the client went
// away) is a 400 with a fixed message. The server's read timeouts bound
// the time this takes.
func ReadBody(c echo.Context, limit int64) ([]byte, error) {
	r := c.Request()
	if r.ContentLength > limit {
		return nil, tooLarge(c, limit, r.Body)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		var netErr net.Error
		if errors.As(err, &netErr) && netErr.Timeout() {
			// The rest may never come: answer without waiting for it.
			c.Response().Header().Set(echo.HeaderConnection, "close")
			return nil, &Error{Status: http.StatusRequestTimeout, Code: "timeout",
				Message: "the request body did not arrive in time"}
		}
		return nil, BadRequest("", "could not read the request body")
	}
	if int64(len(body)) > limit {
		return nil, tooLarge(c, limit, r.Body)
	}
	return body, nil
}

func tooLarge(c echo.Context, limit int64, body io.Reader) error {
	if c.Request().ContentLength > limit+drainLimit {
		// Too large to read to its end: answer at once and close.
		c.Response().Header().Set(echo.HeaderConnection, "close")
	} else if n, err := io.Copy(io.Discard, io.LimitReader(body, drainLimit)); n >= drainLimit || err != nil {
		c.Response().Header().Set(echo.HeaderConnection, "close")
	}
	return &Error{Status: http.StatusRequestEntityTooLarge, Code: "too_large",
		Message: fmt.Sprintf("request body larger than %d bytes", limit)}
}
