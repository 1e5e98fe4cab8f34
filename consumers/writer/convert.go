package writer

// Conversion: each record is decoded, validated and flattened into a row,
// or given the reason it is not stored (dead-lettered or expired).

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/consumers/idwindow"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/migrations"
)

const (
	reasonUndecodable = "undecodable"
	reasonInvalid     = "invalid"
	reasonExpired     = "expired"
)

// converted is the outcome of toRow for one record, whose row convert
// writes in place.
type converted struct {
	key    idwindow.Key // set when the writer has an idempotency window
	reason string
	err    error
}

// convert runs toRow over recs, writing record i's row to rows[i] (rows
// holds len(recs) rows; what a record that makes no row leaves there is
// undefined) and spreading large polls over every core. It returns the
// outcomes in out, grown when needed.
func (w *Writer) convert(ctx context.Context, out []converted, rows []migrations.Row, recs []*kgo.Record) []converted {
	if cap(out) < len(recs) {
		out = make([]converted, len(recs))
	}
	out = out[:len(recs)]
	// One clock reading for the whole poll: the retention and future-skew
	// checks do not need a fresher one per record.
	now := w.now()
	policy := w.policy
	policy.Now = func() time.Time { return now }
	stores := func(ws string, ts time.Time) bool { return w.storesOnArrival(ctx, ws, ts, now) }
	one := func(lo, hi int) {
		for i := lo; i < hi; i++ {
			c, row := &out[i], &rows[i]
			c.reason, c.err = toRow(row, recs[i], &policy, stores)
			c.key = idwindow.Key{}
			if c.err == nil && c.reason == "" && w.ids != nil {
				c.key = idwindow.KeyOf(row.WorkspaceID, row.ID)
			}
		}
	}
	workers := runtime.GOMAXPROCS(0)
	if len(recs) < 512 || workers == 1 {
		one(0, len(recs))
		return out
	}
	var wg sync.WaitGroup
	chunk := (len(recs) + workers - 1) / workers
	for lo := 0; lo < len(recs); lo += chunk {
		wg.Go(func() { one(lo, min(lo+chunk, len(recs))) })
	}
	wg.Wait()
	return out
}

// toRow decodes, validates and flattens one record into *row; an event
// that stores says is not stored on arrival is reported expired. *row is
// written only for a record that makes a row (reason "").
func toRow(row *migrations.Row, r *kgo.Record, policy *event.Policy, stores func(ws string, ts time.Time) bool) (string, error) {
	e, changes, err := event.DecodeStored(r.Value)
	if err != nil {
		return reasonUndecodable, err
	}
	if err := policy.Validate(&e); err != nil {
		return reasonInvalid, err
	}
	if e.ID == "" || e.ReceivedAt.IsZero() {
		return reasonInvalid, errors.New("id and received_at are set by the ingest path and must not be empty")
	}
	if string(r.Key) != e.WorkspaceID {
		return reasonInvalid, fmt.Errorf("record key %q is not the event's workspace_id", truncate(string(r.Key), 64))
	}
	if !stores(e.WorkspaceID, e.Timestamp) {
		return reasonExpired, nil
	}
	*row = migrations.RowWithChanges(&e, changes)
	return "", nil
}

// truncate cuts s to n bytes, marking the cut with "...".
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
