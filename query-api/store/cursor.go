package store

// Cursors: a position in the newest-first order, as the API passes it.

import (
	"errors"
	"regexp"
	"strconv"
	"strings"
)

// Encode returns the cursor as a string: the timestamp in nanoseconds, a
// dot and the id, e.g. "1796040000000000000.evt_1". Clients pass it back
// unchanged; DecodeCursor accepts exactly the strings of CursorPattern.
func (c Cursor) Encode() string {
	return strconv.FormatInt(c.TimestampNs, 10) + "." + c.ID
}

// CursorPattern is the regular expression (in the syntax of both Go and
// the OpenAPI document) that every valid cursor matches and that every
// string DecodeCursor accepts matches: a positive timestamp of at most
// MaxCursorNs, a dot, and an event id.
const CursorPattern = `^(?:[1-9][0-9]{0,17}|[1-8][0-9]{18}|9[01][0-9]{17}|92[01][0-9]{16}|922[0-2][0-9]{15})\.[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}$`

// MaxCursorNs is the largest timestamp a cursor holds: below the largest
// int64 (2262-04-11), where no event's timestamp can be.
const MaxCursorNs = 9222999999999999999

var cursorRE = regexp.MustCompile(CursorPattern)

// ErrBadCursor is returned by DecodeCursor for strings Encode did not make.
var ErrBadCursor = errors.New("invalid cursor: pass next_cursor from a previous page unchanged")

// DecodeCursor parses a cursor made by Encode.
func DecodeCursor(s string) (Cursor, error) {
	if !cursorRE.MatchString(s) {
		return Cursor{}, ErrBadCursor
	}
	ns, id, _ := strings.Cut(s, ".")
	t, err := strconv.ParseInt(ns, 10, 64)
	if err != nil {
		return Cursor{}, ErrBadCursor
	}
	return Cursor{TimestampNs: t, ID: id}, nil
}
