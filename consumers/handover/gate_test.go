package handover_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/consumers/handover"
	"github.com/audittrail/audittrail/consumers/idwindow"
)

const topic = "events"

// offsets is a fake cluster: the partitions' ends and each group's commits.
type offsets struct {
	ends      map[int32]int64
	committed map[string]map[int32]int64
	err       error
	reads     int
}

func (o *offsets) Ends(_ context.Context, tp string, parts []int32) (map[int32]int64, error) {
	if tp != topic {
		return nil, fmt.Errorf("topic %q", tp)
	}
	if o.err != nil {
		return nil, o.err
	}
	out := map[int32]int64{}
	for _, p := range parts {
		out[p] = o.ends[p]
	}
	return out, nil
}

func (o *offsets) Committed(_ context.Context, group, tp string, parts []int32) (map[int32]int64, error) {
	o.reads++
	if o.err != nil {
		return nil, o.err
	}
	out := map[int32]int64{}
	for _, p := range parts {
		if c, ok := o.committed[group][p]; ok {
			out[p] = c
		}
	}
	return out, nil
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// workspace returns a workspace keyed to partition now under after
// partitions and to old under before.
func workspace(t *testing.T, before, old, after, now int) string {
	t.Helper()
	for i := range 100_000 {
		ws := fmt.Sprintf("ws_%d", i)
		if idwindow.PartitionOf(ws, before) == int32(old) && idwindow.PartitionOf(ws, after) == int32(now) {
			return ws
		}
	}
	t.Fatalf("no workspace moves from %d/%d to %d/%d", old, before, now, after)
	return ""
}

func rec(ws string, p int32, off int64) *kgo.Record {
	return &kgo.Record{Topic: topic, Key: []byte(ws), Partition: p, Offset: off}
}

func newGate(off *offsets, c *clock, groups ...string) *handover.Gate {
	return handover.New(handover.Config{Topic: topic, Groups: groups, CheckEvery: time.Second, MaxHold: time.Minute}, off, c.now)
}

// A workspace moved from partition 1 (of 2) to 3 (of 4): its first record
// on 3 holds partition 3, with the records behind it, until the group has
// committed partition 1 past the end it had then; they then go on in
// order, after the load of the workspace's ids stored from partition 1.
func TestAMovedWorkspaceWaitsForItsOldPartition(t *testing.T) {
	moved := workspace(t, 2, 1, 4, 3)
	also := workspace(t, 2, 1, 4, 3) // same workspace is fine: a second record of it
	stays := workspace(t, 2, 0, 4, 0)
	off := &offsets{ends: map[int32]int64{1: 50}, committed: map[string]map[int32]int64{"writer": {1: 40}}}
	c := &clock{t: time.Unix(1000, 0)}
	g := newGate(off, c, "writer")
	g.Assign([]int32{0, 3}, 4, []int{2})
	ctx := context.Background()

	r1, r2, r3 := rec(moved, 3, 0), rec(stays, 0, 7), rec(also, 3, 1)
	res, err := g.Pass(ctx, []*kgo.Record{r1, r2, r3})
	require.NoError(t, err)
	require.Equal(t, []*kgo.Record{r2}, res.Ready, "the partition that did not move goes on")
	require.Equal(t, []int32{3}, res.Pause)
	require.Empty(t, res.Resume)
	require.True(t, g.Holding())
	require.Equal(t, 2, g.Held())

	off.committed["writer"][1] = 49 // one record short of the end
	c.t = c.t.Add(2 * time.Second)
	res, err = g.Pass(ctx, nil)
	require.NoError(t, err)
	require.Empty(t, res.Ready)

	off.committed["writer"][1] = 50
	off.ends[1] = 60 // newer records on the old partition do not matter
	c.t = c.t.Add(2 * time.Second)
	res, err = g.Pass(ctx, nil)
	require.NoError(t, err)
	require.Equal(t, []*kgo.Record{r1, r3}, res.Ready)
	require.Equal(t, []int32{3}, res.Resume)
	require.Equal(t, []handover.Load{{Partition: 1, Workspaces: []string{moved}}}, res.Loads)
	require.False(t, g.Holding())
	require.Zero(t, g.Held())

	// Cleared for the rest of the assignment.
	r4 := rec(moved, 3, 2)
	res, err = g.Pass(ctx, []*kgo.Record{r4})
	require.NoError(t, err)
	require.Equal(t, []*kgo.Record{r4}, res.Ready)
	require.Empty(t, res.Pause)

	// A new assignment checks again.
	g.Assign([]int32{3}, 4, []int{2})
	res, err = g.Pass(ctx, []*kgo.Record{rec(moved, 3, 3)})
	require.NoError(t, err)
	require.Empty(t, res.Ready)
	require.Equal(t, []int32{3}, res.Pause)
}

// When the old partition was already committed past its end, the record
// goes on in the same Pass: no pause, one load.
func TestACaughtUpOldPartitionHoldsNothing(t *testing.T) {
	moved := workspace(t, 2, 0, 4, 2)
	off := &offsets{ends: map[int32]int64{0: 10}, committed: map[string]map[int32]int64{"fwd": {0: 10}, "writer": {0: 12}}}
	g := newGate(off, &clock{t: time.Unix(0, 0)}, "fwd", "writer")
	g.Assign([]int32{2}, 4, []int{2})
	r := rec(moved, 2, 0)
	res, err := g.Pass(context.Background(), []*kgo.Record{r})
	require.NoError(t, err)
	require.Equal(t, []*kgo.Record{r}, res.Ready)
	require.Empty(t, res.Pause)
	require.Empty(t, res.Resume)
	require.Equal(t, []handover.Load{{Partition: 0, Workspaces: []string{moved}}}, res.Loads)
}

// Every group named must have passed the end: the forwarder waits for its
// own group and for the writer's, whose registry it loads.
func TestEveryGroupMustPassTheEnd(t *testing.T) {
	moved := workspace(t, 2, 0, 4, 2)
	off := &offsets{ends: map[int32]int64{0: 10}, committed: map[string]map[int32]int64{"fwd": {0: 10}, "writer": {}}}
	c := &clock{t: time.Unix(0, 0)}
	g := newGate(off, c, "fwd", "writer")
	g.Assign([]int32{2}, 4, []int{2})
	res, err := g.Pass(context.Background(), []*kgo.Record{rec(moved, 2, 0)})
	require.NoError(t, err)
	require.Empty(t, res.Ready, "the writer group has committed nothing on partition 0")
	off.committed["writer"][0] = 10
	c.t = c.t.Add(2 * time.Second)
	res, err = g.Pass(context.Background(), nil)
	require.NoError(t, err)
	require.Len(t, res.Ready, 1)
}

// Records of workspaces that did not move, and records on an old
// partition of workspaces that moved away from it, are never held.
func TestOnlyRecordsOfWorkspacesMovedHereAreHeld(t *testing.T) {
	gone := workspace(t, 2, 1, 4, 3) // on 1 under 2, now keyed to 3
	stays := workspace(t, 2, 1, 4, 1)
	off := &offsets{ends: map[int32]int64{}, committed: map[string]map[int32]int64{}}
	g := newGate(off, &clock{t: time.Unix(0, 0)}, "writer")
	g.Assign([]int32{1}, 4, []int{2})
	recs := []*kgo.Record{rec(gone, 1, 0), rec(stays, 1, 1)}
	res, err := g.Pass(context.Background(), recs)
	require.NoError(t, err)
	require.Equal(t, recs, res.Ready)
	require.Empty(t, res.Pause)
	require.Zero(t, off.reads, "nothing held, no offsets read")

	// With no earlier counts, nothing is ever held.
	g.Assign([]int32{3}, 4, nil)
	r := rec(gone, 3, 0)
	res, err = g.Pass(context.Background(), []*kgo.Record{r})
	require.NoError(t, err)
	require.Equal(t, []*kgo.Record{r}, res.Ready)
}

// A second moved workspace reaching a held partition later moves the end
// the hold waits for to the old partition's end at that time.
func TestALaterWorkspaceWaitsForTheNewerEnd(t *testing.T) {
	f := doubled(t, 0)
	a, b, off, c, g := f.a, f.b, f.off, f.c, f.g
	ctx := context.Background()
	_, err := g.Pass(ctx, []*kgo.Record{rec(a, 3, 0)})
	require.NoError(t, err)
	off.ends[1] = 9
	_, err = g.Pass(ctx, []*kgo.Record{rec(b, 3, 1)})
	require.NoError(t, err)
	off.committed["writer"][1] = 5
	c.t = c.t.Add(2 * time.Second)
	res, err := g.Pass(ctx, nil)
	require.NoError(t, err)
	require.Empty(t, res.Ready, "the end moved to 9 when %s arrived", b)
	off.committed["writer"][1] = 9
	c.t = c.t.Add(2 * time.Second)
	res, err = g.Pass(ctx, nil)
	require.NoError(t, err)
	require.Len(t, res.Ready, 2)
	require.Equal(t, []handover.Load{{Partition: 1, Workspaces: slices.Sorted(slices.Values([]string{a, b}))}}, res.Loads)
}

// A hold longer than MaxHold ends (two partitions waiting on each other
// after an increase that is not a multiple cannot stall for ever), and a
// failed read keeps the hold and returns the error.
func TestHoldsEndAtMaxHoldAndSurviveErrors(t *testing.T) {
	moved := workspace(t, 2, 1, 4, 3)
	off := &offsets{err: errors.New("broker down")}
	c := &clock{t: time.Unix(0, 0)}
	g := newGate(off, c, "writer")
	g.Assign([]int32{3}, 4, []int{2})
	r := rec(moved, 3, 0)
	res, err := g.Pass(context.Background(), []*kgo.Record{r})
	require.ErrorContains(t, err, "broker down")
	require.Empty(t, res.Ready)
	require.Equal(t, []int32{3}, res.Pause)
	c.t = c.t.Add(30 * time.Second)
	res, err = g.Pass(context.Background(), nil)
	require.Error(t, err)
	require.Empty(t, res.Ready)
	c.t = c.t.Add(31 * time.Second)
	res, _ = g.Pass(context.Background(), nil)
	require.Equal(t, []*kgo.Record{r}, res.Ready)
	require.Equal(t, []int32{3}, res.TimedOut)
	require.Equal(t, []int32{3}, res.Resume)
}

// Revoking a held partition drops its records (uncommitted, so its next
// owner reads them) and names it for resuming.
func TestRevokeDropsHeldRecords(t *testing.T) {
	moved := workspace(t, 2, 1, 4, 3)
	off := &offsets{ends: map[int32]int64{1: 5}, committed: map[string]map[int32]int64{}}
	g := newGate(off, &clock{t: time.Unix(0, 0)}, "writer")
	g.Assign([]int32{3}, 4, []int{2})
	_, err := g.Pass(context.Background(), []*kgo.Record{rec(moved, 3, 0)})
	require.NoError(t, err)
	require.Equal(t, []int32{3}, g.Revoke([]int32{0, 3}))
	require.False(t, g.Holding())
	require.Zero(t, g.Held())
	require.Empty(t, g.Revoke([]int32{3}))
}

// Older names the counts replaced within the window, skipping counts a
// recreated topic no longer has.
func TestOlderCounts(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	counts := []idwindow.Count{{Partitions: 2, NoticedAt: t0}, {Partitions: 4, NoticedAt: t0.Add(time.Hour)}, {Partitions: 8, NoticedAt: t0.Add(2 * time.Hour)}}
	require.Equal(t, []int{2, 4}, handover.Older(counts, 8, t0.Add(3*time.Hour), handover.Window))
	require.Equal(t, []int{4}, handover.Older(counts, 8, t0.Add(time.Hour+handover.Window+time.Minute), handover.Window))
	require.Empty(t, handover.Older(counts, 8, t0.Add(2*time.Hour+handover.Window+time.Minute), handover.Window))
	require.Empty(t, handover.Older(counts[:1], 2, t0, handover.Window))
	// Recreated with 4 after 8 (History reads each count once, at its
	// latest time): 8 is not an earlier count of 4.
	recreated := []idwindow.Count{counts[0], counts[2], {Partitions: 4, NoticedAt: t0.Add(3 * time.Hour)}}
	require.Equal(t, []int{2}, handover.Older(recreated, 4, t0.Add(4*time.Hour), handover.Window))
}

// A record of a workspace cleared before, arriving behind another
// workspace's hold on the same partition, waits behind it: a partition's
// records go on in offset order, so no commit passes a held record.
func TestClearedRecordsStayBehindAHold(t *testing.T) {
	f := doubled(t, 5)
	a, b, off, c, g := f.a, f.b, f.off, f.c, f.g
	ctx := context.Background()
	a1 := rec(a, 3, 0)
	res, err := g.Pass(ctx, []*kgo.Record{a1})
	require.NoError(t, err)
	require.Equal(t, []*kgo.Record{a1}, res.Ready, "a's old partition is caught up")

	off.ends[1] = 9
	b1, a2 := rec(b, 3, 1), rec(a, 3, 2)
	res, err = g.Pass(ctx, []*kgo.Record{b1, a2})
	require.NoError(t, err)
	require.Empty(t, res.Ready, "a is cleared, but its record is behind b's")
	off.committed["writer"][1] = 9
	c.t = c.t.Add(2 * time.Second)
	res, err = g.Pass(ctx, nil)
	require.NoError(t, err)
	require.Equal(t, []*kgo.Record{b1, a2}, res.Ready)
}

// After a hold on an old partition timed out, no new hold waits on it
// until the next assignment: one stuck partition does not stall the new
// one again for every moved workspace.
func TestATimedOutOldPartitionIsNotWaitedOnAgain(t *testing.T) {
	f := doubled(t, -1)
	a, b, c, g := f.a, f.b, f.c, f.g
	ctx := context.Background()
	_, err := g.Pass(ctx, []*kgo.Record{rec(a, 3, 0)})
	require.NoError(t, err)
	c.t = c.t.Add(2 * time.Minute)
	res, err := g.Pass(ctx, nil)
	require.NoError(t, err)
	require.Equal(t, []int32{3}, res.TimedOut)

	b1 := rec(b, 3, 1)
	res, err = g.Pass(ctx, []*kgo.Record{b1})
	require.NoError(t, err)
	require.Equal(t, []*kgo.Record{b1}, res.Ready, "partition 1 timed out: not waited on again")
	require.Empty(t, res.Pause)

	g.Assign([]int32{3}, 4, []int{2})
	res, err = g.Pass(ctx, []*kgo.Record{rec(b, 3, 2)})
	require.NoError(t, err)
	require.Empty(t, res.Ready, "a new assignment waits again")
}

// Counts that could not be read (current 0) keep the counts known: a
// failed read does not switch the handover off.
func TestAFailedCountReadKeepsTheCounts(t *testing.T) {
	moved := workspace(t, 2, 1, 4, 3)
	off := &offsets{ends: map[int32]int64{1: 5}, committed: map[string]map[int32]int64{"writer": {}}}
	g := newGate(off, &clock{t: time.Unix(0, 0)}, "writer")
	g.Assign([]int32{3}, 4, []int{2})
	g.Assign([]int32{0}, 0, nil)
	res, err := g.Pass(context.Background(), []*kgo.Record{rec(moved, 3, 0)})
	require.NoError(t, err)
	require.Empty(t, res.Ready)
	require.Equal(t, []int32{3}, res.Pause)
}

// otherWorkspace is a workspace other than not that moves like it.
func otherWorkspace(t *testing.T, not string, before, old, after, now int) string {
	t.Helper()
	for i := range 100_000 {
		ws := fmt.Sprintf("wo_%d", i)
		if ws != not && idwindow.PartitionOf(ws, before) == int32(old) && idwindow.PartitionOf(ws, after) == int32(now) {
			return ws
		}
	}
	t.Fatalf("no second workspace moves from %d/%d to %d/%d", old, before, now, after)
	return ""
}

// fixture is a gate of the writer group after the topic grew from 2 to 4
// partitions, assigned partition 3, with two workspaces a and b moved
// there from partition 1, whose end is 5.
type fixture struct {
	a, b string
	off  *offsets
	c    *clock
	g    *handover.Gate
}

// doubled returns the fixture with the group's commit on partition 1 at
// committed (none when negative).
func doubled(t *testing.T, committed int64) fixture {
	t.Helper()
	a := workspace(t, 2, 1, 4, 3)
	f := fixture{a: a, b: otherWorkspace(t, a, 2, 1, 4, 3), c: &clock{t: time.Unix(0, 0)},
		off: &offsets{ends: map[int32]int64{1: 5}, committed: map[string]map[int32]int64{"writer": {}}}}
	if committed >= 0 {
		f.off.committed["writer"][1] = committed
	}
	f.g = newGate(f.off, f.c, "writer")
	f.g.Assign([]int32{3}, 4, []int{2})
	return f
}
