package idwindow_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/consumers/idwindow"
	"github.com/audittrail/audittrail/internal/stacktest"
)

// After a partition-count increase, Moved returns the registered ids of the
// workspaces the producers now key to the assigned partitions, stored from
// their old ones: the newest max per old partition, oldest first, and
// nothing of workspaces that stayed or went to other partitions.
func TestMovedReturnsTheIDsOfWorkspacesMovedToTheAssignedPartitions(t *testing.T) {
	conn, ch := stacktest.ClickHouse(t, 90)
	reg := idwindow.NewRegistry(conn, ch.Database)
	const topic, before, after = "events", 3, 6
	now := time.Now().UTC().Truncate(time.Second)
	var ids []idwindow.StoredID
	byWorkspace := map[string][]string{}
	for i := range 12 {
		ws := fmt.Sprintf("ws_%d", i)
		for j := range 5 {
			id := fmt.Sprintf("%s-%d", ws, j)
			ids = append(ids, idwindow.StoredID{Topic: topic, Partition: idwindow.PartitionOf(ws, before),
				StoredAt: now.Add(time.Duration(j-10) * time.Second), WorkspaceID: ws, ID: id, TimestampNs: int64(j)})
			byWorkspace[ws] = append(byWorkspace[ws], id)
		}
	}
	ids = append(ids, idwindow.StoredID{Topic: "other", Partition: 0, StoredAt: now, WorkspaceID: "ws_0", ID: "elsewhere"})
	ctx := context.Background()
	require.NoError(t, reg.Register(ctx, ids))

	for q := int32(0); q < after; q++ {
		want := map[string]bool{}
		for ws, wsIDs := range byWorkspace {
			if idwindow.PartitionOf(ws, after) == q && idwindow.PartitionOf(ws, before) != q {
				for _, id := range wsIDs {
					want[ws+"/"+id] = true
				}
			}
		}
		got, err := reg.Moved(ctx, topic, after, []int32{q}, now.Add(-time.Hour), 0)
		require.NoError(t, err)
		require.Len(t, got, len(want), "partition %d", q)
		for _, s := range got {
			require.True(t, want[s.WorkspaceID+"/"+s.ID], "partition %d: %s/%s moved there", q, s.WorkspaceID, s.ID)
			require.Equal(t, idwindow.PartitionOf(s.WorkspaceID, before), s.Partition)
		}
	}

	all := []int32{0, 1, 2, 3, 4, 5}
	got, err := reg.Moved(ctx, topic, before, all, now.Add(-time.Hour), 0)
	require.NoError(t, err)
	require.Empty(t, got, "nothing moved while the count is unchanged")

	got, err = reg.Moved(ctx, topic, after, all, now.Add(-time.Hour), 2)
	require.NoError(t, err)
	perOld := map[int32][]idwindow.StoredID{}
	for _, s := range got {
		perOld[s.Partition] = append(perOld[s.Partition], s)
	}
	for p, ss := range perOld {
		require.Len(t, ss, 2, "the newest 2 of old partition %d", p)
		require.False(t, ss[1].StoredAt.Before(ss[0].StoredAt), "oldest first")
	}
	got, err = reg.Moved(ctx, topic, after, all, now.Add(-5*time.Second), 0)
	require.NoError(t, err)
	for _, s := range got {
		require.False(t, s.StoredAt.Before(now.Add(-5*time.Second)), "only ids stored since the given time")
	}
}
