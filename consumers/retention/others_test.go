package retention

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// selects evaluates an idRange's condition for id, as ClickHouse would
// (bytewise string order).
func (rg idRange) selects(t *testing.T, id string) bool {
	if rg.cond == "1" {
		return true
	}
	require.Equal(t, strings.Count(rg.cond, "?"), len(rg.args), "every placeholder has its arg")
	args := rg.args
	if strings.HasPrefix(rg.cond, "workspace_id >= ?") {
		if id < args[0].(string) {
			return false
		}
		args = args[1:]
	}
	if strings.Contains(rg.cond, "workspace_id < ?") {
		if id >= args[0].(string) {
			return false
		}
		args = args[1:]
	}
	for _, a := range args {
		if a.(string) == id {
			return false
		}
	}
	return true
}

func TestRangesOfTheWorkspacesWithoutAPolicyCoverEachIDOnce(t *testing.T) {
	for _, n := range []int{0, 1, 499, 500, 501, 1000, 1234} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			var named []string
			for i := range n {
				named = append(named, fmt.Sprintf("ws_%05d", i*2))
			}
			slices.Sort(named)
			ranges := idRanges(named, 500)
			require.Len(t, ranges, max(1, (n+499)/500))
			probes := append(slices.Clone(named), "", "A", "ws_", "ws_00001", "ws_99999", "zzz", "ws_00999", "ws_01001", "ws_\xff")
			for _, id := range probes {
				selected := 0
				for _, rg := range ranges {
					require.LessOrEqual(t, strings.Count(rg.cond, "?"), 502, "at most 500 names and two bounds")
					if rg.selects(t, id) {
						selected++
					}
				}
				_, isNamed := slices.BinarySearch(named, id)
				if isNamed {
					require.Zero(t, selected, "%q has a policy: no range selects it", id)
				} else {
					require.Equal(t, 1, selected, "%q: exactly one range selects it", id)
				}
			}
		})
	}
}

func TestStatementsNameAtMost500Workspaces(t *testing.T) {
	var xs []expiry
	for range 700 {
		xs = append(xs, expiry{ws: "w", names: 1})
	}
	for _, n := range []int{500, 500, 37} {
		xs = append(xs, expiry{names: n})
	}
	chunks := chunkExpiries(xs)
	total := 0
	for _, c := range chunks {
		names := 0
		for _, x := range c {
			names += max(x.names, 1)
		}
		require.LessOrEqual(t, names, 500)
		total += len(c)
	}
	require.Equal(t, len(xs), total, "every condition is in one statement")
	require.Len(t, chunks, 5, "500, 200, 500, 500 and 37 names")
	require.Empty(t, chunkExpiries(nil))
}
