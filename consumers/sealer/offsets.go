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
	"time"

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
	rows     map[Key]migrations.Row
	readBack map[Key]bool
	// notStored marks the items the offsets record says were not stored
	// (dead-lettered, expired on arrival, a duplicate).
	notStored []bool
	// fallback counts the items read back from the events table.
	fallback int
}

// resolve finds the stored row of each item: from the offsets record when
// it holds the item's offset (one query for the round), else read back
// from the events table by key (one query for those). A duplicate (the
// writer found its id in its window) is not stored when its id has a
// leaf or a stored copy in the round; else it is read back (see
// duplicates).
func (s *sequencer) resolve(ctx context.Context, items []Item) (resolved, error) {
	res := resolved{rows: make(map[Key]migrations.Row, len(items)), readBack: map[Key]bool{}, notStored: make([]bool, len(items))}
	recorded, err := s.store.Offsets(ctx, spans(items))
	if err != nil {
		return res, fmt.Errorf("read the offsets record: %w", err)
	}
	var back []Key
	var dupes []int
	for i, it := range items {
		o, ok := recorded[it.At]
		switch {
		case it.At.Topic == "" || !ok:
			back = append(back, it.Key)
		case o.Outcome == migrations.OutcomeDuplicate:
			dupes = append(dupes, i)
		case o.Outcome != migrations.OutcomeStored:
			res.notStored[i] = true
		case it.Record == nil || (Key{o.WorkspaceID, o.TimestampNs, o.ID}) != it.Key:
			// Not decoded as the writer did (an older catalogue), or the
			// offset's row names another event (a changed offsets
			// record): the stored row decides.
			back = append(back, it.Key)
		default:
			row := *it.Record
			row.ReceivedAtNs = o.ReceivedAtNs
			row.ReceivedAt = time.Unix(0, o.ReceivedAtNs).UTC().Truncate(time.Second)
			res.rows[it.Key] = row
		}
	}
	more, err := s.duplicates(ctx, items, dupes, &res)
	if err != nil {
		return res, err
	}
	back = append(back, more...)
	res.fallback = len(back)
	if len(back) == 0 {
		return res, nil
	}
	stored, err := s.store.Rows(ctx, back)
	if err != nil {
		return res, fmt.Errorf("read stored rows: %w", err)
	}
	for k, r := range stored {
		if _, ok := res.rows[k]; !ok {
			res.rows[k] = r
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
	for ws, is := range older {
		keys := make([]Key, len(is))
		for j, i := range is {
			keys[j] = items[i].Key
		}
		has, err := s.store.HasLeaves(ctx, ws, keys)
		if err != nil {
			return nil, fmt.Errorf("look up leaves of %s: %w", ws, err)
		}
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
	by := map[[2]any]*Span{}
	var out []*Span
	for _, it := range items {
		a := it.At
		if a.Topic == "" {
			continue
		}
		k := [2]any{a.Topic, a.Partition}
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
	out := map[At]migrations.StoredOffset{}
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
		// On a cluster each shard picks its own (the copies of an offset
		// may be sharded apart: a record not stored has no workspace), so
		// the choice is made again here.
		at := At{o.Topic, o.Partition, o.Offset}
		if prev, ok := out[at]; ok && prev.Outcome == migrations.OutcomeStored {
			continue
		}
		out[at] = o
	}
	return out, rows.Err()
}
