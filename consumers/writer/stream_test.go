package writer

// Unit tests of the streamed insert: a batch's rows go to ClickHouse
// while it fills, its records are marked only once it is stored, and a
// stream that fails is given up for one insert of the whole batch.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/schemas/migrations"
)

// streamSink is a fakeSink that can also stream a batch (StartInsert).
// Rows appended to a stream count as stored once the stream is committed.
// The stream's Append number failAppend (from 1, over all streams) fails,
// and so does every Commit when failCommit is set.
type streamSink struct {
	*fakeSink
	failAppend int
	failCommit bool

	smu      sync.Mutex
	appends  int
	tries    int      // Commits called
	appended int      // rows appended to streams
	commits  int      // streams committed
	wrong    []string // what a Commit found amiss
}

func newStreamSink() *streamSink { return &streamSink{fakeSink: newFakeSink()} }

func (s *streamSink) StartInsert(context.Context) (InsertStream, error) {
	return &fakeStream{s: s}, nil
}

func (s *streamSink) state() (appended, commits int, wrong []string) {
	s.smu.Lock()
	defer s.smu.Unlock()
	return s.appended, s.commits, slices.Clone(s.wrong)
}

type fakeStream struct {
	s       *streamSink
	ids     []string
	aborted bool
}

var errStream = errors.New("stream broke")

func (st *fakeStream) Append(rows []migrations.Row) error {
	st.s.smu.Lock()
	defer st.s.smu.Unlock()
	if st.aborted {
		st.s.wrong = append(st.s.wrong, "append after abort")
	}
	st.s.appends++
	if st.s.appends == st.s.failAppend {
		return errStream
	}
	for i := range rows {
		st.ids = append(st.ids, rows[i].ID)
	}
	st.s.appended += len(rows)
	return nil
}

// Commit stores the appended rows, which must be all of rows, in order.
func (st *fakeStream) Commit(_ context.Context, rows []migrations.Row) error {
	st.s.smu.Lock()
	if st.aborted {
		st.s.wrong = append(st.s.wrong, "commit after abort")
	}
	if len(rows) != len(st.ids) {
		st.s.wrong = append(st.s.wrong, fmt.Sprintf("committed %d rows, streamed %d", len(rows), len(st.ids)))
	}
	for i := range min(len(rows), len(st.ids)) {
		if rows[i].ID != st.ids[i] {
			st.s.wrong = append(st.s.wrong, fmt.Sprintf("row %d is %s, streamed %s", i, rows[i].ID, st.ids[i]))
			break
		}
	}
	st.s.tries++
	fail := st.s.failCommit
	if !fail {
		st.s.commits++
	}
	st.s.smu.Unlock()
	if fail {
		return errStream
	}
	st.s.mu.Lock()
	defer st.s.mu.Unlock()
	for _, id := range st.ids {
		st.s.stored[id]++
	}
	return nil
}

func (st *fakeStream) Abort() { st.aborted = true }

// TestBatchIsStreamedWhileItFills: the rows of a batch that is neither
// full nor due go to its INSERT while it fills, nothing is stored or
// committed until the batch is flushed, and then every row is stored
// once, by the stream, and the offset moves past every record. The same
// events read again later in the batch (a replay) are not streamed again.
func TestBatchIsStreamedWhileItFills(t *testing.T) {
	k := newKafka(t, 1)
	ids, recs := k.sendEvents(t, "evt", 300)
	sink := newStreamSink()
	w, stop := start(t, k.config(1000), k.client(), sink) // pieces of 125 rows or more
	require.Eventually(t, func() bool { return w.buffered() == 300 }, 10*time.Second, 5*time.Millisecond)
	require.Eventually(t, func() bool { a, _, _ := sink.state(); return a >= 125 }, 10*time.Second, 5*time.Millisecond,
		"rows streamed before the batch is full or due")
	k.send(t, again(recs)...) // the same events again, later in the batch
	require.Eventually(t, func() bool { return w.buffered() == 600 }, 10*time.Second, 5*time.Millisecond)
	inserts, stored := sink.counts()
	require.Zero(t, inserts)
	require.Empty(t, stored, "nothing is stored before the batch is flushed")
	require.Equal(t, int64(-1), k.committed(t, 0))

	require.NoError(t, stop())
	appended, commits, wrong := sink.state()
	require.Empty(t, wrong)
	require.Equal(t, []int{300, 1}, []int{appended, commits}, "rows streamed, and the streams committed")
	inserts, stored = sink.counts()
	require.Zero(t, inserts, "the batch was stored by its stream")
	require.Len(t, stored, len(ids))
	for _, id := range ids {
		require.Equal(t, 1, stored[id], id)
	}
	require.Equal(t, int64(600), k.committed(t, 0))
}

// sendEvents produces n valid events to partition 0, with ids prefix_0
// ... in offset order, and returns the ids and the records.
func (k *kafka) sendEvents(t *testing.T, prefix string, n int) ([]string, []*kgo.Record) {
	t.Helper()
	ids := make([]string, n)
	recs := make([]*kgo.Record, n)
	for i := range n {
		ids[i] = fmt.Sprintf("%s_%d", prefix, i)
		recs[i] = eventRecord(t, "ws_"+prefix, ids[i])
	}
	k.send(t, again(recs)...)
	return ids, recs
}

// again returns copies of recs to produce to partition 0.
func again(recs []*kgo.Record) []*kgo.Record {
	out := make([]*kgo.Record, len(recs))
	for i, r := range recs {
		out[i] = &kgo.Record{Key: r.Key, Value: r.Value}
	}
	return out
}

// TestFailedStreamIsInsertedWhole: when a stream fails midway (a piece
// not sent, or the INSERT not acknowledged at the end), the batch is
// inserted whole by one Insert, and nothing is committed before that
// insert is acknowledged.
func TestFailedStreamIsInsertedWhole(t *testing.T) {
	for _, tc := range []struct {
		name       string
		failAppend int
		failCommit bool
	}{
		{"a piece fails", 2, false}, // the stream is given up: no more Appends, no Commit
		{"the end fails", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := newKafka(t, 1)
			sink := newStreamSink()
			sink.failAppend, sink.failCommit = tc.failAppend, tc.failCommit
			sink.hold, sink.release = "evt0_0", make(chan struct{}) // the first row: the whole batch's Insert waits
			w, stop := start(t, k.config(400), k.client(), sink)    // pieces of 50 rows or more
			var ids []string
			for i := range 4 { // four polls of 100 events; the fourth fills the batch
				part, _ := k.sendEvents(t, fmt.Sprint("evt", i), 100)
				ids = append(ids, part...)
				if i < 3 {
					require.Eventually(t, func() bool { return w.buffered() == len(ids) }, 10*time.Second, 5*time.Millisecond)
				}
			}
			require.Eventually(t, func() bool {
				sink.smu.Lock()
				defer sink.smu.Unlock()
				return sink.appends == 2 && tc.failAppend > 0 || sink.tries == 1
			},
				10*time.Second, 5*time.Millisecond)
			for range 10 { // ten autocommit chances pass: nothing is stored, nothing to commit
				require.Equal(t, int64(-1), k.committed(t, 0))
				time.Sleep(100 * time.Millisecond)
			}
			close(sink.release)
			require.Eventually(t, func() bool { return k.committed(t, 0) == 400 }, 10*time.Second, 10*time.Millisecond)
			require.NoError(t, stop())
			inserts, stored := sink.counts()
			require.Equal(t, 1, inserts, "one insert of the whole batch")
			require.Len(t, stored, len(ids))
			for _, id := range ids {
				require.Equal(t, 1, stored[id], id)
			}
			_, commits, wrong := sink.state()
			require.Empty(t, wrong)
			require.Zero(t, commits)
			if tc.failAppend > 0 {
				require.Equal(t, []int{2, 0}, []int{sink.appends, sink.tries}, "given up at the failure")
			}
		})
	}
}
