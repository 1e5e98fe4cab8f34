// Package tilenote is the text of the integrity log's signed tile notes
// (docs/integrity.md#provable-expiry). For each complete tile of 256
// leaves of a workspace's log, the sealer signs two notes with its
// checkpoint key:
//
//	<origin>/<workspace>/tile-times      <origin>/<workspace>/tile-newest
//	<tile index>                         <tile index>
//	<tile hash, base64>                  <tile hash, base64>
//	<t0> <t1> ... <t255>                 <newest>
//
// where t_i is the event time (Unix seconds, UTC) of leaf 256*tile+i, 0
// when the sealer could not authenticate it, and newest the largest t_i
// (0 when any t_i is).
// The tile hash (tlog's stored hash of level 8) binds a note to the
// leaves under a signed checkpoint's root, so that a verifier who finds
// an event gone can tell expiry by retention (its time is older than the
// window) from deletion. The origin lines cannot be a checkpoint's: a
// workspace id has no '/'.
package tilenote

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/tlog"
)

// Signature returns the signature lines of a signed note (what follows
// its text and the blank line), given its text; "" when signed does not
// start with text.
func Signature(signed []byte, text string) string {
	rest, ok := strings.CutPrefix(string(signed), text+"\n")
	if !ok {
		return ""
	}
	return rest
}

// Leaves is the number of leaves of a tile (tlog tiles of height 8).
const Leaves = 256

// Height is the tile height: a tile's hash is the stored hash of this
// level.
const Height = 8

const (
	timesKind  = "tile-times"
	newestKind = "tile-newest"
)

// Tile is the part both notes share.
type Tile struct {
	Origin, Workspace string
	Index             int64
	Hash              tlog.Hash
}

// Times is a tile-times note's body.
type Times struct {
	Tile
	// Times are the leaves' event times, Unix seconds, 0 for unknown.
	Times [Leaves]int64
}

// Newest is a tile-newest note's body.
type Newest struct {
	Tile
	Newest int64
}

func (t Tile) head(kind string) string {
	return fmt.Sprintf("%s/%s/%s\n%d\n%s\n", t.Origin, t.Workspace, kind, t.Index, base64.StdEncoding.EncodeToString(t.Hash[:]))
}

// Text returns the note's body.
func (t Times) Text() string {
	var b strings.Builder
	b.WriteString(t.head(timesKind))
	for i, s := range t.Times {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.FormatInt(s, 10))
	}
	b.WriteByte('\n')
	return b.String()
}

// Newest returns the newest-time note of the tile: the largest of the
// times, or 0 (unknown) when any time is unknown, since that leaf may be
// the newest.
func (t Times) Newest() Newest {
	n := Newest{Tile: t.Tile}
	for _, s := range t.Times {
		if s == 0 {
			return Newest{Tile: t.Tile}
		}
		n.Newest = max(n.Newest, s)
	}
	return n
}

// Text returns the note's body.
func (n Newest) Text() string {
	return n.head(newestKind) + strconv.FormatInt(n.Newest, 10) + "\n"
}

// parse reads the shared lines of a note of kind and returns its last line.
func parse(text, kind string) (Tile, string, error) {
	var t Tile
	lines := strings.Split(text, "\n")
	if len(lines) != 5 || lines[4] != "" {
		return t, "", fmt.Errorf("%s note: want 4 lines", kind)
	}
	head, ok := strings.CutSuffix(lines[0], "/"+kind)
	origin, ws, cut := strings.Cut(head, "/")
	if !ok || !cut || origin == "" || ws == "" || strings.Contains(ws, "/") {
		return t, "", fmt.Errorf("%s note: origin line %q is not <origin>/<workspace>/%s", kind, lines[0], kind)
	}
	index, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || index < 0 || strconv.FormatInt(index, 10) != lines[1] {
		return t, "", fmt.Errorf("%s note: tile %q is not an index", kind, lines[1])
	}
	h, err := base64.StdEncoding.Strict().DecodeString(lines[2])
	if err != nil || len(h) != tlog.HashSize {
		return t, "", fmt.Errorf("%s note: %q is not a base64 SHA-256 hash", kind, lines[2])
	}
	t = Tile{Origin: origin, Workspace: ws, Index: index}
	copy(t.Hash[:], h)
	return t, lines[3], nil
}

func seconds(s string) (int64, error) {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 || strconv.FormatInt(v, 10) != s {
		return 0, fmt.Errorf("%q is not a time in Unix seconds", s)
	}
	return v, nil
}

// ParseTimes reads a tile-times note's body.
func ParseTimes(text string) (Times, error) {
	tile, last, err := parse(text, timesKind)
	if err != nil {
		return Times{}, err
	}
	fields := strings.Split(last, " ")
	if len(fields) != Leaves {
		return Times{}, fmt.Errorf("%s note: %d times, want %d", timesKind, len(fields), Leaves)
	}
	t := Times{Tile: tile}
	for i, f := range fields {
		if t.Times[i], err = seconds(f); err != nil {
			return Times{}, fmt.Errorf("%s note: time %d: %w", timesKind, i, err)
		}
	}
	return t, nil
}

// ParseNewest reads a tile-newest note's body.
func ParseNewest(text string) (Newest, error) {
	tile, last, err := parse(text, newestKind)
	if err != nil {
		return Newest{}, err
	}
	s, err := seconds(last)
	if err != nil {
		return Newest{}, fmt.Errorf("%s note: %w", newestKind, err)
	}
	return Newest{Tile: tile, Newest: s}, nil
}
