package writer

// Conversion: each record is decoded, validated and flattened into a row,
// or given the reason it is not stored (dead-lettered or expired).

import (
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

// converted is the outcome of toRow for one record.
type converted struct {
	row    migrations.Row
	key    idwindow.Key // set when the writer has an idempotency window
	reason string
	err    error
}

// convert runs toRow over recs, spreading large polls over every core. It
// returns the outcomes in out, grown when needed.
func (w *Writer) convert(out []converted, recs []*kgo.Record) []converted {
	if cap(out) < len(recs) {
		out = make([]converted, len(recs))
	}
	out = out[:len(recs)]
	// One clock reading for the whole poll: the retention and future-skew
	// checks do not need a fresher one per record.
	now := w.now()
	policy := w.policy
	policy.Now = func() time.Time { return now }
	one := func(lo, hi int) {
		for i := lo; i < hi; i++ {
			c := &out[i]
			c.row, c.reason, c.err = toRow(recs[i], &policy, now, w.cfg.RetentionDays)
			c.key = idwindow.Key{}
			if c.err == nil && c.reason == "" && w.ids != nil {
				c.key = idwindow.KeyOf(c.row.WorkspaceID, c.row.ID)
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

// toRow decodes, validates and flattens one record, at now; events older
// than retentionDays are reported expired.
func toRow(r *kgo.Record, policy *event.Policy, now time.Time, retentionDays int) (migrations.Row, string, error) {
	e, changes, err := event.DecodeStored(r.Value)
	if err != nil {
		return migrations.Row{}, reasonUndecodable, err
	}
	if err := policy.Validate(&e); err != nil {
		return migrations.Row{}, reasonInvalid, err
	}
	if e.ID == "" || e.ReceivedAt.IsZero() {
		return migrations.Row{}, reasonInvalid, errors.New("id and received_at are set by the ingest path and must not be empty")
	}
	if string(r.Key) != e.WorkspaceID {
		return migrations.Row{}, reasonInvalid, fmt.Errorf("record key %q is not the event's workspace_id", truncate(string(r.Key), 64))
	}
	if e.Timestamp.Before(now.Add(-time.Duration(retentionDays) * 24 * time.Hour)) {
		return migrations.Row{}, reasonExpired, nil
	}
	return migrations.RowWithChanges(&e, changes), "", nil
}
