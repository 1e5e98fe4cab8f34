package handover

// Which earlier partition counts a consumer still hands over.

import (
	"slices"
	"time"

	"github.com/audittrail/audittrail/consumers/idwindow"
)

// Older returns the earlier counts (of counts, oldest first, the last
// being current) that were replaced within window before now: the counts
// under which a workspace's records may still sit on another partition
// than current keys it to. A count replaced longer ago than window is
// settled: producers refresh their metadata within minutes, and the
// consumers' lag is far shorter than window. A count at or above current
// (a topic recreated with fewer partitions) is skipped.
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
