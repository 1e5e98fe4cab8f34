// Package httpserver is the HTTP bootstrap shared by the ingest gateway and
// the read API.
//
// It provides an echo instance with panic recovery, request logs with
// latency, request metrics, /healthz, /readyz and /metrics, one error
// handler that maps every error (router 404s and 405s included) to the JSON
// envelope {"error": {"code", "message", "field"}}, Cache-Control: no-store
// and X-Content-Type-Options: nosniff on every response, a 400 for a
// malformed query string, the client address taken from forwarded headers
// only behind trusted proxies, server timeouts and header limits (Limits),
// and graceful shutdown.
package httpserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Error is an API error with its HTTP status. Handlers return it; the error
// handler writes it as {"error": {...}}.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
	// Details carries structured detail, e.g. one entry per invalid event.
	Details any `json:"details,omitempty"`
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s (%s)", e.Code, e.Message, e.Field)
	}
	return e.Code + ": " + e.Message
}

// BadRequest returns a 400 naming the field.
func BadRequest(field, msg string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "invalid_parameter", Field: field, Message: msg}
}

// Options configure New.
type Options struct {
	Name string // service name, for logs and metric labels
	Log  *slog.Logger
	Reg  prometheus.Registerer
	// Gatherer serves /metrics; nil serves Reg when it is a *prometheus.Registry.
	Gatherer prometheus.Gatherer
	// Ready reports whether dependencies are reachable (for /readyz).
	Ready func(ctx context.Context) error
	// TrustedProxies are the peers whose X-Forwarded-For and X-Real-IP
	// headers are believed (AUDITTRAIL_TRUSTED_PROXIES); empty: none, and
	// c.RealIP() is always the socket's peer address.
	TrustedProxies []netip.Prefix
	// Limits are the server's timeouts and header limit; zero fields take
	// DefaultLimits' values.
	Limits Limits
}

// New returns an echo instance with the shared middleware and endpoints.
func New(o Options) *echo.Echo {
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = errorHandler(o.Log)
	e.IPExtractor = IPExtractor(o.TrustedProxies)
	o.Limits.apply(e.Server)
	e.Pre(securityHeaders)
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{DisablePrintStack: true}))
	e.Use(observe(o))
	e.Use(validQuery)
	e.Use(unescapePath)

	e.GET("/healthz", func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
	})
	e.GET("/readyz", func(c echo.Context) error {
		if o.Ready != nil {
			ctx, cancel := context.WithTimeout(c.Request().Context(), 3*time.Second)
			defer cancel()
			if err := o.Ready(ctx); err != nil {
				// The cause names hosts and driver errors: logged, not answered.
				if o.Log != nil {
					o.Log.Warn("not ready", "err", err)
				}
				return &Error{Status: http.StatusServiceUnavailable, Code: "not_ready", Message: "a dependency is unreachable"}
			}
		}
		return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
	})
	g := o.Gatherer
	if g == nil {
		if r, ok := o.Reg.(*prometheus.Registry); ok {
			g = r
		}
	}
	if g != nil {
		e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(g, promhttp.HandlerOpts{})))
	}
	return e
}

func observe(o Options) echo.MiddlewareFunc {
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "audittrail_http_request_seconds",
		Help:    "HTTP request latency by route and status.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
	}, []string{"service", "route", "code"})
	if o.Reg != nil {
		o.Reg.MustRegister(latency)
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			err := next(c)
			if err != nil {
				c.Error(err)
			}
			status := c.Response().Status
			d := time.Since(start)
			route := c.Path()
			latency.WithLabelValues(o.Name, route, strconv.Itoa(status)).Observe(d.Seconds())
			if o.Log != nil && route != "/healthz" && route != "/metrics" {
				level := slog.LevelInfo
				if status >= 500 {
					level = slog.LevelError
				}
				o.Log.LogAttrs(c.Request().Context(), level, "request",
					slog.String("method", c.Request().Method), slog.String("route", route),
					slog.Int("status", status), slog.Duration("latency", d),
					slog.Int64("bytes_out", c.Response().Size))
			}
			return nil
		}
	}
}

func errorHandler(log *slog.Logger) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		var apiErr *Error
		var he *echo.HTTPError
		switch {
		case errors.As(err, &apiErr):
		case errors.As(err, &he):
			apiErr = &Error{Status: he.Code, Code: codeFor(he.Code), Message: strings.ToLower(fmt.Sprint(he.Message))}
		default:
			if log != nil {
				log.Error("internal error", "route", c.Path(), "err", err)
			}
			apiErr = &Error{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error"}
		}
		if c.Request().Method == http.MethodHead {
			_ = c.NoContent(apiErr.Status)
			return
		}
		_ = c.JSON(apiErr.Status, map[string]*Error{"error": apiErr})
	}
}

func codeFor(status int) string {
	switch status {
	case http.StatusNotFound:
		return "not_found"
	case http.StatusMethodNotAllowed:
		return "method_not_allowed"
	case http.StatusRequestEntityTooLarge:
		return "too_large"
	case http.StatusUnauthorized:
		return "unauthorized"
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusUnsupportedMediaType:
		return "unsupported_media_type"
	case http.StatusServiceUnavailable:
		return "unavailable"
	}
	if status >= 500 {
		return "internal"
	}
	return "bad_request"
}

// securityHeaders marks every response, errors included, as not to be
// cached or content-sniffed; a handler may replace Cache-Control (the page's
// static files do).
func securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set(echo.HeaderCacheControl, "no-store")
		h.Set(echo.HeaderXContentTypeOptions, "nosniff")
		return next(c)
	}
}

// ListeningMessage is the message Listening logs once a listener is bound,
// with the attributes "listener" (its name) and "addr" (the bound
// host:port). Tests start a binary on port 0 and read the port it got from
// this line (proctest.Output), so no other process can take it first.
const ListeningMessage = "listening"

// Listening returns a ready func for Serve that logs, at info, the address
// the listener named listener ("http", "admin") is bound to.
func Listening(log *slog.Logger, listener string) func(net.Addr) {
	return func(a net.Addr) { log.Info(ListeningMessage, "listener", listener, "addr", a.String()) }
}

// Serve listens on addr and serves e (from New, with its Limits) until ctx
// ends, then shuts down gracefully within 10 s. ready, when not nil,
// receives the bound address (the port the kernel chose for port 0)
// before the first request is accepted.
func Serve(ctx context.Context, e *echo.Echo, addr string, ready func(net.Addr)) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	srv := e.Server
	srv.Handler = e
	if ready != nil {
		ready(ln.Addr())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve %s: %w", addr, err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown %s: %w", addr, err)
	}
	<-errc
	return nil
}
