package emitter

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/schemas/event"
)

// TestEmitterRecordsItsProducer: every event published carries the
// configured producer as sender.producer, whatever the caller put in
// Sender, and no credential id.
func TestEmitterRecordsItsProducer(t *testing.T) {
	c := newCluster(t, 1)
	em := newEmitter(t, Config{Producer: "warehouse-service"}, c.ListenAddrs()...)
	ctx := context.Background()
	plain := sample("ws_1", "evt_plain")
	forged := sample("ws_1", "evt_forged")
	forged.Sender = event.Sender{CredentialID: "legacy-0123456789ab", Producer: "billing"}
	require.NoError(t, em.Emit(ctx, plain))
	require.NoError(t, em.Emit(ctx, forged))

	for _, r := range consume(t, 2, "audit", c.ListenAddrs()...) {
		e, err := event.Decode(r.Value)
		require.NoError(t, err)
		require.Equal(t, event.Sender{Producer: "warehouse-service"}, e.Sender, e.ID)
	}
}

func TestProducerDefaultsAndIsValidated(t *testing.T) {
	em := newEmitter(t, Config{}, "127.0.0.1:1")
	require.Equal(t, DefaultProducer(), em.cfg.Producer)
	require.NotEmpty(t, DefaultProducer())
	ev := sample("ws_1", "evt_1")
	r, err := em.Record(&ev)
	require.NoError(t, err)
	require.Contains(t, string(r.Value), `"sender":{"producer":"`+DefaultProducer()+`"}`)

	for _, bad := range []string{"a\nb", "a\u0085b", strings.Repeat("p", event.MaxIDLen+1)} {
		_, err := New(Config{Producer: bad}, []kgo.Opt{kgo.SeedBrokers("127.0.0.1:1")}, clock)
		require.ErrorContains(t, err, "Producer=", "%q", bad)
	}
}
