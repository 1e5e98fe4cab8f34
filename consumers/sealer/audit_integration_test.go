package sealer_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/consumers/sealer"
	"github.com/audittrail/audittrail/query-api/verify/tampertest"
)

// counter is the value of the counter name with label=value in reg (-1
// when absent).
func counter(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return -1
}

// TestARowAlteredAfterItWasSealedIsFoundByTheAudit: on 18.16, the
// background audit (sized to cover the log, a pass every 100 ms) finds
// every leaf matching while nothing is touched, and counts the leaf of a
// row changed by ALTER UPDATE after it was sealed as altered; nothing is
// absent.
func TestARowAlteredAfterItWasSealedIsFoundByTheAudit(t *testing.T) {
	s := newStack(t)
	defer s.writer()()
	reg := prometheus.NewRegistry()
	defer s.sealerWith(nil, reg, func(c *sealer.Config) { c.Audit, c.AuditEvery = 1000, 100*time.Millisecond })()
	ts := time.Now().UTC().Add(-time.Minute)
	var recs []*kgo.Record
	for i := range 6 {
		recs = append(recs, record(t, s.events, "ws_t", fmt.Sprintf("evt_%d", i), ts.Add(time.Duration(i)*time.Millisecond)))
	}
	s.send(recs...)
	require.Eventually(t, func() bool { size, _ := s.latest("ws_t"); return size == 6 }, 30*time.Second, 100*time.Millisecond)
	audited := func(result string) float64 {
		return counter(t, reg, "audittrail_sealer_leaves_audited_total", "result", result)
	}
	require.Eventually(t, func() bool { return audited("match") >= 12 }, 10*time.Second, 50*time.Millisecond, "two passes over the whole log")
	require.Zero(t, audited("altered"), "nothing touched, nothing altered")

	require.NoError(t, tampertest.Tamperer{Conn: s.conn, Database: s.db}.SetActor(context.Background(), "ws_t", "evt_4", "usr_evil"))
	require.Eventually(t, func() bool { return audited("altered") >= 2 }, 10*time.Second, 50*time.Millisecond, "found in the passes after the change")
	require.Zero(t, audited("absent"))
}
