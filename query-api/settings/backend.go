package settings

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/internal/backoff"
	"github.com/audittrail/audittrail/internal/kvtopic"
	"github.com/audittrail/audittrail/query-api/auth"
)

// Backend is the production Store and Emitter: the settings table on the
// compacted settings topic and the API's emitter.
type Backend struct {
	Table   *kvtopic.Table
	Emitter Emitter
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// Start, in the background, creates the settings topic when missing and
// loads the settings table; settings changes are recorded through em (the
// caller's to close). Kafka being unreachable does not stop the read API:
// the settings routes answer 503 until the table is loaded. Close it when
// done.
func Start(ctx context.Context, brokerOpts []kgo.Opt, settingsTopic string, em Emitter, log *slog.Logger) (*Backend, error) {
	table, err := kvtopic.New(brokerOpts, settingsTopic, nil)
	if err != nil {
		return nil, err
	}
	rctx, rcancel := context.WithCancel(context.WithoutCancel(ctx))
	b := &Backend{Table: table, Emitter: em, cancel: rcancel}
	b.wg.Go(func() {
		err := backoff.Policy{Min: 2 * time.Second, Max: 2 * time.Second}.Retry(rctx, func() error {
			tctx, cancel := context.WithTimeout(rctx, 30*time.Second)
			defer cancel()
			return kvtopic.Ensure(tctx, brokerOpts, settingsTopic)
		}, func(_ int, err error, _ time.Duration) {
			log.Warn("settings topic not ready; settings routes answer 503 until it is", "topic", settingsTopic, "err", err)
		})
		if err != nil { // rctx ended
			_ = table.Run(rctx) // returns at once; closes the table's client
			return
		}
		if err := table.Run(rctx); err != nil {
			log.Error("settings table stopped", "err", err)
		}
	})
	return b, nil
}

// Options returns the Register options over this backend.
func (b *Backend) Options(v *auth.Verifier, log *slog.Logger) Options {
	return Options{Store: b.Table, Emitter: b.Emitter, Verifier: v, Log: log, Now: time.Now}
}

// Close stops the table.
func (b *Backend) Close() {
	b.cancel()
	b.wg.Wait()
}
