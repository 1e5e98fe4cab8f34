package handover

// Which earlier partition counts a consumer still hands over.

import (
	"slices"
	"time"

	"github.com/audittrail/audittrail/consumers/idwindow"
)

// Older returns the counts below current (of counts, smallest and oldest
// first, as idwindow.History records them) that were replaced within
// window before now: the counts under which a workspace's records may
// still sit on another partition than current keys it to. A count
// replaced longer ago than window is taken as settled: producers refresh
// their metadata within 30 seconds, and the consumers are normally far less
// than window behind (see docs/partitioning.md for when they are not).
func Older(counts []idwindow.Count, current int, now time.Time, window time.Duration) []int {
	var out []int
	for i := 0; i+1 < len(counts); i++ {
		c := counts[i]
		if c.Partitions < current && now.Sub(counts[i+1].NoticedAt) <= window && !slices.Contains(out, c.Partitions) {
			out = append(out, c.Partitions)
		}
	}
	return out
}
