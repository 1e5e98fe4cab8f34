package settings

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/internal/kvtopic"
	"github.com/audittrail/audittrail/producers/emitter"
	"github.com/audittrail/audittrail/query-api/auth"
)

// Backend is the production Store and Emitter: the settings table on the
// compacted settings topic and an emitter publishing to the events topic.
type Backend struct {
	Table   *kvtopic.Table
	Emitter *emitter.Emitter
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// Start creates the settings topic when missing, starts loading the
// settings table in the background and opens the emitter. Close it when done.
func Start(ctx context.Context, brokerOpts []kgo.Opt, eventsTopic, settingsTopic string, log *slog.Logger) (*Backend, error) {
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err := kvtopic.Ensure(tctx, brokerOpts, settingsTopic)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("settings topic: %w", err)
	}
	table, err := kvtopic.New(brokerOpts, settingsTopic, nil)
	if err != nil {
		return nil, err
	}
	em, err := emitter.New(emitter.Config{Topic: eventsTopic}, brokerOpts, time.Now)
	if err != nil {
		return nil, err
	}
	rctx, rcancel := context.WithCancel(context.WithoutCancel(ctx))
	b := &Backend{Table: table, Emitter: em, cancel: rcancel}
	b.wg.Go(func() {
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

// Close stops the table and flushes and closes the emitter.
func (b *Backend) Close() {
	b.cancel()
	b.wg.Wait()
	b.Emitter.Close()
}
