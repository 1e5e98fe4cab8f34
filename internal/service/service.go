// Package service holds what the long-running services' mains (writer,
// forwarder, ingest, api) do the same way: a JSON logger on stderr tagged
// with the service's name, a context cancelled by SIGINT or SIGTERM (the
// start of the two-phase shutdown each service runs), a metrics registry
// with the Go and process collectors, and the exit status. The health
// endpoints and graceful HTTP shutdown are internal/httpserver's.
package service

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Run is a service's body: it returns when ctx is cancelled and the
// service has shut down, or with the error that stopped it.
type Run func(ctx context.Context, log *slog.Logger, reg *prometheus.Registry) error

// Main runs run and exits the process with status 1, after logging
// "<name> stopped" and the error, when it returns one.
func Main(name string, run Run) {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil)).With("service", name)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, log, NewRegistry())
	stop()
	if err != nil {
		log.Error(name+" stopped", "err", err)
		os.Exit(1)
	}
}

// NewRegistry returns a metrics registry holding the Go runtime and
// process collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}
