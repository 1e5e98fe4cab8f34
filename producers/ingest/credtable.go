package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/internal/kvtopic"
)

// ErrCredentialsNotLoaded is Ready's answer until the credentials topic has
// been read to the end offsets it had when the table started.
var ErrCredentialsNotLoaded = errors.New("producer credentials not loaded yet")

// CredentialTable keeps a CredentialStore in step with the credentials
// topic. Open it with OpenCredentials; Close stops it and waits for its
// goroutine.
type CredentialTable struct {
	Store  *CredentialStore
	table  *kvtopic.Table
	cancel context.CancelFunc
	done   chan struct{}
}

// OpenCredentials starts reading topic (which must exist: kvtopic.Ensure)
// into a new store. A record that cannot be decoded or validated is logged
// and opens nothing.
func OpenCredentials(brokerOpts []kgo.Opt, topic string, log *slog.Logger) (*CredentialTable, error) {
	store := &CredentialStore{OnInvalid: func(key string, err error) {
		log.Error("producer credential ignored", "credential_id", key, "err", err)
	}}
	table, err := kvtopic.New(brokerOpts, topic, store.Apply)
	if err != nil {
		return nil, fmt.Errorf("credentials table: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t := &CredentialTable{Store: store, table: table, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(t.done)
		if err := table.Run(ctx); err != nil {
			log.Error("credentials table stopped", "topic", topic, "err", err)
		}
	}()
	return t, nil
}

// Ready is nil once the table is loaded, ErrCredentialsNotLoaded before.
func (t *CredentialTable) Ready(context.Context) error {
	select {
	case <-t.table.Ready():
		return nil
	default:
		return ErrCredentialsNotLoaded
	}
}

// WaitReady waits until the table is loaded or ctx ends.
func (t *CredentialTable) WaitReady(ctx context.Context) error { return t.table.WaitReady(ctx) }

// Close stops reading and waits for the reader to return.
func (t *CredentialTable) Close() {
	t.cancel()
	<-t.done
}
