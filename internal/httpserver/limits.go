package httpserver

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// Limits bound what one client can hold of a server: how long it may take
// to send its headers and its whole request, how long the answer may take
// to go out, how long an idle keep-alive connection stays open, and how
// large the headers may be. A slow or stalled client is disconnected when a
// limit passes; it never holds a connection, a goroutine or a request slot
// for longer.
type Limits struct {
	// ReadHeaderTimeout bounds reading the request line and headers.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading the whole request, headers and body, from
	// its first byte: a body must arrive within it (4 MiB in 30 s is a
	// minimum rate of about 140 KB/s).
	ReadTimeout time.Duration
	// WriteTimeout bounds the answer, from the end of the request headers
	// to the last byte written. Streaming handlers extend it as they make
	// progress (ExtendWriteDeadline), so only a stall of this long cuts
	// them.
	WriteTimeout time.Duration
	// IdleTimeout bounds the wait for the next request on a keep-alive
	// connection.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds the request line and headers; larger requests
	// get 431.
	MaxHeaderBytes int
}

// DefaultLimits are the limits every service runs with.
func DefaultLimits() Limits {
	return Limits{
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
}

// withDefaults fills zero fields from DefaultLimits.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.ReadHeaderTimeout <= 0 {
		l.ReadHeaderTimeout = d.ReadHeaderTimeout
	}
	if l.ReadTimeout <= 0 {
		l.ReadTimeout = d.ReadTimeout
	}
	if l.WriteTimeout <= 0 {
		l.WriteTimeout = d.WriteTimeout
	}
	if l.IdleTimeout <= 0 {
		l.IdleTimeout = d.IdleTimeout
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = d.MaxHeaderBytes
	}
	return l
}

// apply sets the limits (defaults for zero fields) on srv.
func (l Limits) apply(srv *http.Server) {
	l = l.withDefaults()
	srv.ReadHeaderTimeout = l.ReadHeaderTimeout
	srv.ReadTimeout = l.ReadTimeout
	srv.WriteTimeout = l.WriteTimeout
	srv.IdleTimeout = l.IdleTimeout
	srv.MaxHeaderBytes = l.MaxHeaderBytes
}

// Stream keeps the write deadline of a long answer ahead of it: a
// handler that streams (the CSV export) calls Progress as it writes, and
// each call at least a quarter of WriteTimeout after the last one gives the
// answer another WriteTimeout. A client that keeps reading gets the whole
// answer however long it is; one that stops reading, or a source that stops
// producing, is cut after WriteTimeout. Not safe for concurrent use.
type Stream struct {
	c     echo.Context
	every time.Duration
	last  time.Time
}

// NewStream returns a Stream for c's answer and extends its deadline now.
func NewStream(c echo.Context) (*Stream, error) {
	s := &Stream{c: c, every: c.Echo().Server.WriteTimeout / 4}
	return s, s.extend()
}

// Progress extends the write deadline when a quarter of WriteTimeout has
// passed since the last extension. Writers that cannot set deadlines (test
// recorders) are left as they are.
func (s *Stream) Progress() error {
	if s.every <= 0 || time.Since(s.last) < s.every {
		return nil
	}
	return s.extend()
}

func (s *Stream) extend() error {
	d := s.c.Echo().Server.WriteTimeout
	if d <= 0 {
		return nil
	}
	s.last = time.Now()
	err := http.NewResponseController(s.c.Response()).SetWriteDeadline(s.last.Add(d))
	if err != nil && !errors.Is(err, http.ErrNotSupported) {
		return fmt.Errorf("extend write deadline: %w", err)
	}
	return nil
}

// SetReadDeadline bounds what is left of reading c's request body: a read
// after d from now fails. Handlers that hold a scarce resource while they
// read the body (the gateway's request slots) set it, so a stalled body
// frees the resource after d. Writers that cannot set deadlines (test
// recorders) are left as they are.
func SetReadDeadline(c echo.Context, d time.Duration) error {
	err := http.NewResponseController(c.Response()).SetReadDeadline(time.Now().Add(d))
	if err != nil && !errors.Is(err, http.ErrNotSupported) {
		return fmt.Errorf("set read deadline: %w", err)
	}
	return nil
}
