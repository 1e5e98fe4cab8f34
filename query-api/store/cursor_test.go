package store

import (
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCursorRoundTrip(t *testing.T) {
	for _, c := range []Cursor{
		{TimestampNs: 1, ID: "a"},
		{TimestampNs: 1796040000000000000, ID: "evt_1.x:y-z"},
		{TimestampNs: MaxCursorNs, ID: "e" + strings.Repeat("1", 127)},
	} {
		s := c.Encode()
		require.Regexp(t, CursorPattern, s)
		got, err := DecodeCursor(s)
		require.NoError(t, err, s)
		require.Equal(t, c, got)
	}
}

func TestBadCursorsAreRefused(t *testing.T) {
	for _, s := range []string{
		"", "0.a", "-1.a", "01.a", "1.", "1._a", "1.a b", "a.1", "1", ".a",
		strconv.FormatInt(MaxCursorNs+1, 10) + ".a",
		strconv.FormatInt(math.MaxInt64, 10) + ".a",
		"99999999999999999999.a",
		"eyJ0IjoxLCJpIjoiYSJ9", // the former base64 JSON form
		"1.e" + strings.Repeat("1", 128),
	} {
		_, err := DecodeCursor(s)
		require.ErrorIs(t, err, ErrBadCursor, "%q", s)
	}
}

// FuzzDecodeCursor: DecodeCursor accepts exactly the strings of
// CursorPattern (what the OpenAPI document states), and Encode gives an
// accepted cursor back unchanged.
func FuzzDecodeCursor(f *testing.F) {
	for _, s := range []string{"1.a", "9222999999999999999.evt_1", "9223372036854775807.a", "1.a\n", "007.a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := DecodeCursor(s)
		require.Equal(t, cursorRE.MatchString(s), err == nil, "%q", s)
		if err == nil {
			require.Equal(t, s, c.Encode())
			require.Positive(t, c.TimestampNs)
		}
	})
}
