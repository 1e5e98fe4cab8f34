package sealer

// What the writer stored, by offset: a round's records are looked up in
// the offsets record (migrations.OffsetsTable), one index range per
// partition, and each stored event's row is the record's own with the
// received_at_ns the writer stored. Records the offsets record does not
// hold (stored before migration 9, by a writer that does not record them,
// or older than its retention) are read back from the events table by
// key, as before.

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/audittrail/audittrail/schemas/migrations"
)

// At is a record's place: its topic, partition and offset.
type At struct {
	Topic     string
	Partition int32
	Offset    int64
}

// Span is a range of one partition's offsets, both ends included.
type Span struct {
	Topic    string
	Part     int32
	From, To int64
}

// resolved is what the writer did with a round's items.
type resolved struct {
	// rows holds the stored row of each stored key: the record's, or read
	// back from the events table (readBack).
	rows     map[Key]*migrations.Row
	readBack map[Key]bool
	// notStored marks the items the offsets record says were not stored
	// (dead-lettered, expired on arrival, a duplicate).
	notStored []bool
	// fallback counts the items read back from the events table, by
	// reason (the read-back counter's label).
	fallback map[string]int
	// tampered are the items whose offsets row differs from the record
	// (another key, another received_at_ns): the writer writes neither.
	tampered []Key
}

// Reasons a record is read back from the events table.
const (
	readBackAbsent     = "absent"      // its offset is not in the offsets record
	readBackUnverified = "unvalidated" // this sealer's validation refuses it
	readBackOtherKey   = "other_key"   // its offset's row names another event
	readBackReceivedAt = "received_at" // its offset's row has another received_at_ns
	readBackDuplicate  = "duplicate"   // a duplicate whose id has no leaf yet
)

// readBackReasons are the read-back counter's labels.
var readBackReasons = []string{readBackAbsent, readBackUnverified, readBackOtherKey, readBackReceivedAt, readBackDuplicate}

// resolve finds the stored row of each item: from the offsets record when
// it holds the item's offset (one query for the round), else read back
// from the events table by key (one query for those). A stored record's
// row is the record itself: the writer stores it from this very record,
// so the offsets row must name its key and its received_at_ns; one that
// does not was written by someone else (tampered) and the stored row is
// read back and compared instead. A duplicate (the writer found its id
// in its window) is not stored when its id has a leaf or a stored copy
// in the round; else it is read back (see duplicates).
func (s *sequencer) resolve(ctx context.Context, items []Item) (resolved, error) {
	res := resolved{rows: make(map[Key]*migrations.Row, len(items)), readBack: map[Key]bool{}, notStored: make([]bool, len(items)),
		fallback: map[string]int{}}
	recorded, err := s.store.Offsets(ctx, spans(items))
	if err != nil {
		return res, fmt.Errorf("read the offsets record: %w", err)
	}
	var back []Key
	readBack := func(k Key, reason string) {
		back = append(back, k)
		res.fallback[reason]++
	}
	var dupes []int
	for i, it := range items {
		o, ok := recorded[it.At]
		switch {
		case it.At.Topic == "" || !ok:
			readBack(it.Key, readBackAbsent)
		case o.Outcome == migrations.OutcomeDuplicate:
			// Its key was stored: by this record from a writer that did not
			// record it, or by another record (see duplicates).
			dupes = append(dupes, i)
		case o.Outcome != migrations.OutcomeStored:
			res.notStored[i] = true
		case (Key{o.WorkspaceID, o.TimestampNs, o.ID}) != it.Key:
			res.tampered = append(res.tampered, it.Key)
			readBack(it.Key, readBackOtherKey)
		case it.Record == nil: // an older catalogue: the stored row decides
			readBack(it.Key, readBackUnverified)
		case o.ReceivedAtNs != it.Record.ReceivedAtNs:
			res.tampered = append(res.tampered, it.Key)
			readBack(it.Key, readBackReceivedAt)
		default:
			res.rows[it.Key] = it.Record
		}
	}
	more, err := s.duplicates(ctx, items, dupes, &res)
	if err != nil {
		return res, err
	}
	back = append(back, more...)
	if len(more) > 0 {
		res.fallback[readBackDuplicate] += len(more)
	}
	if len(back) == 0 {
		return res, nil
	}
	stored, err := s.storedRows(ctx, back)
	if err != nil {
		return res, err
	}
	for k, r := range stored {
		if _, ok := res.rows[k]; !ok {
			res.rows[k] = &r
			res.readBack[k] = true
		}
	}
	return res, nil
}

// duplicates settles the items (indexes dupes) the writer recorded as
// duplicates of an id it stored: not stored when the id has a leaf
// (known in memory, or looked up for keys older than what memory holds)
// or a stored copy among the round's records. It returns the keys of the
// others, to read back: their id was stored from another record that
// has no leaf yet, or from this very record by a writer that did not
// record it (a rolling deploy's older version that crashed before its
// commit), and the stored row is the truth.
func (s *sequencer) duplicates(ctx context.Context, items []Item, dupes []int, res *resolved) ([]Key, error) {
	if len(dupes) == 0 {
		return nil, nil
	}
	wss := map[string]bool{}
	for _, i := range dupes {
		wss[items[i].Key.WorkspaceID] = true
	}
	if err := s.load(ctx, wss); err != nil {
		return nil, err
	}
	// The ids stored in the round (a resend with another timestamp is a
	// duplicate of its id, not of its key).
	storedIDs := make(map[[2]string]bool, len(res.rows))
	for k := range res.rows {
		storedIDs[[2]string{k.WorkspaceID, k.ID}] = true
	}
	older := map[string][]int{}
	var back []Key
	for _, i := range dupes {
		k := items[i].Key
		t := s.trees[k.WorkspaceID]
		_, sealed := t.seenIDs[k.ID]
		inRound := storedIDs[[2]string{k.WorkspaceID, k.ID}]
		switch {
		case sealed || inRound:
			res.notStored[i] = true
		case k.TimestampNs < t.seenFrom:
			older[k.WorkspaceID] = append(older[k.WorkspaceID], i)
		default:
			back = append(back, k)
		}
	}
	keys := map[string][]Key{}
	for ws, is := range older {
		for _, i := range is {
			keys[ws] = append(keys[ws], items[i].Key)
		}
	}
	has, err := s.hasLeaves(ctx, keys)
	if err != nil {
		return nil, err
	}
	for _, is := range older {
		for _, i := range is {
			if has[items[i].Key] {
				res.notStored[i] = true
			} else {
				back = append(back, items[i].Key)
			}
		}
	}
	return back, nil
}

// spans returns the offset ranges of items' partitions (items without a
// place are left out): the rounds' records are their partitions' next
// ones, so each range holds few offsets that are not the round's.
func spans(items []Item) []Span {
	type part struct {
		topic string
		part  int32
	}
	by := map[part]*Span{}
	var out []*Span
	for _, it := range items {
		a := it.At
		if a.Topic == "" {
			continue
		}
		k := part{a.Topic, a.Partition}
		sp, ok := by[k]
		if !ok {
			sp = &Span{Topic: a.Topic, Part: a.Partition, From: a.Offset, To: a.Offset}
			by[k] = sp
			out = append(out, sp)
		}
		sp.From, sp.To = min(sp.From, a.Offset), max(sp.To, a.Offset)
	}
	res := make([]Span, len(out))
	for i, sp := range out {
		res[i] = *sp
	}
	slices.SortFunc(res, func(a, b Span) int {
		if c := strings.Compare(a.Topic, b.Topic); c != 0 {
			return c
		}
		return int(a.Part) - int(b.Part)
	})
	return res
}

// Offsets implements Store: one query, an index range per span. Of
// several rows of one offset (a batch recorded again after a writer
// crash, or replayed), it takes a stored one when there is one (the
// events table has its row, whatever a replay decided), the last recorded
// among them.
func (s *ClickHouseStore) Offsets(ctx context.Context, spans []Span) (map[At]migrations.StoredOffset, error) {
	n := int64(0)
	for _, sp := range spans {
		n += sp.To - sp.From + 1
	}
	out := make(map[At]migrations.StoredOffset, min(n, 1<<20)) // about the round's offsets
	if len(spans) == 0 {
		return out, nil
	}
	var where strings.Builder
	args := make([]any, 0, 4*len(spans))
	for i, sp := range spans {
		if i > 0 {
			where.WriteString(" OR ")
		}
		where.WriteString("(topic = ? AND partition = ? AND kafka_offset BETWEEN ? AND ?)")
		args = append(args, sp.Topic, uint32(sp.Part), sp.From, sp.To)
	}
	q := fmt.Sprintf(`SELECT topic, partition, kafka_offset, outcome, workspace_id, id, timestamp_ns, received_at_ns
FROM %s WHERE %s
ORDER BY outcome = %d DESC, stored_at DESC
LIMIT 1 BY topic, partition, kafka_offset`, s.table(migrations.OffsetsTable), where.String(), migrations.OutcomeStored)
	rows, err := s.conn.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			o    migrations.StoredOffset
			part uint32
		)
		if err := rows.Scan(&o.Topic, &part, &o.Offset, &o.Outcome, &o.WorkspaceID, &o.ID, &o.TimestampNs, &o.ReceivedAtNs); err != nil {
			return nil, err
		}
		o.Partition = int32(part)
		// The first row of an offset is the chosen one (the query's order);
		// LIMIT 1 BY leaves one, but the first stays first whatever the
		// server returns.
		at := At{o.Topic, o.Partition, o.Offset}
		if _, ok := out[at]; ok {
			continue
		}
		out[at] = o
	}
	return out, rows.Err()
}
