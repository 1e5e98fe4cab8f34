package store

// A histogram's buckets as sums of 15-minute slots: hour and day buckets
// of a zone whose offsets are whole quarter hours are sums of the UTC
// slots of 900 seconds, so a part's counts per slot serve every such zone
// (slotcache.go).

import "fmt"

// slotSeconds is the width of a slot; slot n is the seconds
// [n*slotSeconds, (n+1)*slotSeconds) since 1970 UTC.
const slotSeconds = 900

// bucketing is how a histogram gives a second its bucket key: the
// bucket's start (Unix seconds) for a width in seconds, or the number of
// the local day (day).
type bucketing struct {
	off   offsets
	width int64
	day   bool
}

// expr is the bucket key of a row as a ClickHouse expression.
func (b bucketing) expr() string {
	off := "(" + b.off.expr() + ")"
	local := "intDiv(timestamp_ns, 1000000000) + " + off
	if b.day {
		return fmt.Sprintf("intDiv(%s, 86400)", local)
	}
	return fmt.Sprintf("intDiv(%s, %d) * %d - %s", local, b.width, b.width, off)
}

// key is the bucket key of Unix second sec, as expr computes it (intDiv
// truncates towards zero, as Go's division does).
func (b bucketing) key(sec int64) int64 {
	off := int64(b.off.at(sec))
	if b.day {
		return (sec + off) / 86400
	}
	return (sec+off)/b.width*b.width - off
}

// wholeSlot reports whether every second of slot n (n >= 0) lies in one
// bucket: the offset does not change inside the slot, and its first and
// last seconds have one key (the key does not decrease with the second
// under one offset). Widths under a slot never are.
func (b bucketing) wholeSlot(n int64) bool {
	if !b.day && b.width < slotSeconds {
		return false
	}
	first, last := n*slotSeconds, n*slotSeconds+slotSeconds-1
	if n < 0 || b.off.at(first) != b.off.at(last) {
		return false
	}
	// An offset may change and change back inside the slot.
	for _, e := range b.off.ends {
		if e > first && e <= last {
			return false
		}
	}
	return b.key(first) == b.key(last)
}
