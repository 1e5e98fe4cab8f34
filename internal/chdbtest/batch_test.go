package chdbtest

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestColumnAppendsBecomeRows: slices appended column by column are sent
// as rows; columns of unequal lengths, a batch appended both ways, and a
// value that is not a slice are refused.
func TestColumnAppendsBecomeRows(t *testing.T) {
	b := &batch{}
	require.NoError(t, b.Column(0).Append([]string{"a", "b"}))
	require.NoError(t, b.Column(1).Append([]uint64{1, 2}))
	require.NoError(t, b.columnsToRows())
	require.Equal(t, [][]any{{"a", uint64(1)}, {"b", uint64(2)}}, b.rows)
	require.Nil(t, b.cols)

	b = &batch{}
	require.NoError(t, b.Column(0).Append([]string{"a", "b"}))
	require.NoError(t, b.Column(1).Append([]uint64{1}))
	require.ErrorContains(t, b.columnsToRows(), "column 1 has 1 values")

	b = &batch{}
	require.NoError(t, b.Append("a", uint64(1)))
	require.NoError(t, b.Column(0).Append([]string{"b"}))
	require.ErrorContains(t, b.columnsToRows(), "both by row and by column")

	require.ErrorContains(t, (&batch{}).Column(0).Append("not a slice"), "takes a slice")
	b = &batch{sent: true}
	require.Error(t, b.Column(0).AppendRow("x"), "after Send")
}
