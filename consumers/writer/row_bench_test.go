package writer

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/producers/loadgen"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// BenchmarkToRow measures the per-record work of the writer before the
// insert: decode, validate, flatten.
func BenchmarkToRow(b *testing.B) {
	g, err := loadgen.New(loadgen.Config{Workspaces: 100, ZipfS: 1.2, Seed: 1}, nil)
	if err != nil {
		b.Fatal(err)
	}
	recs := make([]*kgo.Record, 1000)
	for i := range recs {
		e := g.Next()
		e.ReceivedAt = time.Now()
		v, _ := event.Marshal(&e)
		recs[i] = &kgo.Record{Key: []byte(e.WorkspaceID), Value: v}
	}
	now := time.Now()
	policy := event.Policy{AllowCustomEvents: true, Now: func() time.Time { return now }}
	b.ReportAllocs()
	b.ResetTimer()
	var row migrations.Row
	for i := 0; b.Loop(); i++ {
		if _, err := toRow(&row, recs[i%len(recs)], &policy, func(string, time.Time) bool { return true }); err != nil {
			b.Fatal(err)
		}
	}
}
