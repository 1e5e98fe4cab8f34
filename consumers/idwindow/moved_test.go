package idwindow_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/consumers/idwindow"
)

// PartitionOf must choose what the producers choose (emitter.Partitioner,
// the Java client's default): the Java client's own murmur2 test vectors
// (UtilsTest.testMurmur2), (hash & 0x7fffffff) % partitions.
func TestPartitionOfMatchesTheJavaClient(t *testing.T) {
	vectors := map[string]int32{
		"21": -973932308, "foobar": -790332482, "a-little-bit-long-string": -985981536,
		"a-little-bit-longer-string": -1486304829, "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971, "abc": 479470107,
	}
	for _, n := range []int{1, 2, 3, 4, 6, 7, 12, 100} {
		for key, hash := range vectors {
			require.Equal(t, int32((uint32(hash)&0x7fffffff)%uint32(n)), idwindow.PartitionOf(key, n), "key %q, %d partitions", key, n)
		}
	}
}
