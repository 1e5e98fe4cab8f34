package main

// The steady load through the gateway, and counting what arrived: the
// stored ids and the dead letters.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/audittrail/audittrail/producers/loadgen"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/scripts/internal/drillkit"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// steadyLoad posts batches of 50 realistic events at o.rate through the
// gateway and records the ids of every 202. With poison, 1% of the load is
// published straight to Kafka as poison records.
func (e *env) steadyLoad(ctx context.Context, poison bool) {
	g, _ := loadgen.New(loadConfig(uint64(time.Now().UnixNano())), time.Now)
	const batch = 50
	interval := time.Second * batch / time.Duration(e.o.rate)
	client := &http.Client{Timeout: 10 * time.Second}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		events := make([]event.Event, batch)
		for i := range events {
			events[i] = g.Next()
		}
		e.postBatch(ctx, client, events)
		if poison && n%2 == 0 {
			// one poison record per 100 events
			recs := []*kgo.Record{{Key: []byte("ws_poison"), Value: []byte(fmt.Sprintf(`{"broken": %d`, n))}}
			if err := e.producer.ProduceSync(ctx, recs...).FirstErr(); err == nil {
				e.mu.Lock()
				e.poison++
				e.mu.Unlock()
			}
		}
	}
}

// postBatch posts one batch (twice in the duplicates scenario) and
// records its ids as sent, and those the gateway accepted (and, in the
// sink scenarios, which of them the forwarder must deliver).
func (e *env) postBatch(ctx context.Context, client *http.Client, events []event.Event) {
	body, _ := json.Marshal(map[string]any{"batch": events})
	sends := 1
	if e.sendTwice {
		sends = 2
	}
	postedAt := time.Now()
	e.mu.Lock()
	for i := range events {
		k := events[i].WorkspaceID + "/" + events[i].ID
		e.sent[k] = true
		if e.postedAt != nil {
			e.postedAt[k] = postedAt
		}
	}
	e.mu.Unlock()
	for range sends {
		// A request in flight when the load stops still gets its answer,
		// and a failed one is retried with the same ids, as a producer
		// does; the load's end only stops new batches.
		var ids []string
		var err error
		for attempt := 0; attempt < 3; attempt++ {
			if ids, err = drillkit.Post(context.WithoutCancel(ctx), client, "http://"+e.addr("ingest")+"/v1/events", ingestToken, body); err == nil {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if err != nil {
			continue // never confirmed: counted as sent, not as accepted
		}
		var forwardable []bool
		if e.sink != nil {
			forwardable = make([]bool, len(ids))
			for i := range ids {
				forwardable[i] = e.isForwardable(&events[i])
			}
		}
		e.mu.Lock()
		for i, id := range ids { // ids come back in batch order
			k := events[i].WorkspaceID + "/" + id
			e.accepted[k] = true
			if forwardable != nil && forwardable[i] {
				e.forwardable[k] = true
			}
		}
		e.mu.Unlock()
	}
}

// visible reads the stored ids as the API does.
func (e *env) visible(ctx context.Context) (map[string]int, error) {
	return drillkit.Visible(ctx, e.chConn, e.db)
}

// deadLetters counts the records in a dead-letter topic, waiting up to
// 30 s for want of them.
func (e *env) deadLetters(ctx context.Context, topic string, want int) (int, error) {
	adm := kadm.NewClient(e.producer)
	deadline := time.Now().Add(30 * time.Second)
	for {
		ends, err := adm.ListEndOffsets(ctx, topic)
		if err != nil {
			return 0, err
		}
		n := 0
		ends.Each(func(o kadm.ListedOffset) { n += int(o.Offset) })
		if n >= want || time.Now().After(deadline) {
			return n, nil
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func covers(got map[string]int, want map[string]bool) bool {
	for id := range want {
		if got[id] == 0 {
			return false
		}
	}
	return true
}

func maps(m map[string]bool) map[string]bool {
	out := make(map[string]bool, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
