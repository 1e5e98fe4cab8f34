package store

import (
	"context"
	"fmt"
)

// MaxFacets bounds each list of Facets (the most frequent first).
const MaxFacets = 1000

// EventCount is how many events of one name matched.
type EventCount struct {
	Name  string `json:"name"`
	Count uint64 `json:"count"`
}

// ActorCount is how many events one actor made; Name is the actor's name on
// its newest matching event.
type ActorCount struct {
	Type  string `json:"type"`
	ID    string `json:"id"`
	Name  string `json:"name"`
	Count uint64 `json:"count"`
}

// Facets are the event names and actors of the events matching a filter,
// each with its count, most frequent first (ties by name or id), at most
// MaxFacets of each.
type Facets struct {
	Events []EventCount `json:"events"`
	Actors []ActorCount `json:"actors"`
}

// Facets counts the events matching f (in the retention window) by name and
// by actor, counting each event once however many unmerged copies it has.
func (s *Store) Facets(ctx context.Context, f Filter) (Facets, error) {
	out := Facets{Events: []EventCount{}, Actors: []ActorCount{}}
	sc, err := s.scope(ctx, f)
	if err != nil || sc.empty() {
		return out, err
	}
	events, merged, err := s.source(ctx)
	if err != nil {
		return Facets{}, err
	}
	kept, err := s.anyKept(ctx, events, f, sc)
	if err != nil {
		return Facets{}, fmt.Errorf("facets: %w", err)
	}
	if kept || sc.events.empty() {
		return s.unionFacets(ctx, events, f, sc)
	}
	// Only the events table holds matching events: each list is one
	// count of distinct events per group (distinctGroups), the rows of
	// settled parts counted as they are.
	var q query
	q.bounds(f.WorkspaceID, sc.events)
	q.filters(f)
	byEvent := groupCount{
		g:     grouping{sel: "event", by: "event", tail: fmt.Sprintf("ORDER BY cnt DESC, event LIMIT %d", MaxFacets)},
		reset: func() { out.Events = out.Events[:0] },
		row: func(scan func(...any) error) error {
			var c EventCount
			if err := scan(&c.Name, &c.Count); err != nil {
				return err
			}
			out.Events = append(out.Events, c)
			return nil
		},
	}
	byActor := groupCount{
		g: grouping{
			sel: "actor_type, actor_id", by: "actor_type, actor_id",
			aggs: ", argMax(actor_name, timestamp_ns)",
			tail: fmt.Sprintf("ORDER BY cnt DESC, actor_type, actor_id LIMIT %d", MaxFacets),
		},
		reset: func() { out.Actors = out.Actors[:0] },
		row: func(scan func(...any) error) error {
			var c ActorCount
			if err := scan(&c.Type, &c.ID, &c.Name, &c.Count); err != nil {
				return err
			}
			out.Actors = append(out.Actors, c)
			return nil
		},
	}
	if err := s.distinctGroups(ctx, events, merged, q, byEvent, byActor); err != nil {
		return Facets{}, fmt.Errorf("facets: %w", err)
	}
	return out, nil
}

// anyKept reports whether the long-term table holds an event matching f in
// sc (a workspace kept longer than the deployment's window, or restored
// events): one granule of its index range, usually none.
func (s *Store) anyKept(ctx context.Context, events string, f Filter, sc scope) (bool, error) {
	if sc.noKept || sc.kept.empty() {
		return false, nil
	}
	bs := s.branches(f.WorkspaceID, events, sc, sc.kept, func(q *query) { q.filters(f) })
	b := bs[len(bs)-1] // the long-term table's
	cond, args := b.q.clauses()
	var n uint64
	if err := s.queryRow(ctx, []any{&n}, "SELECT count() FROM (SELECT 1 FROM "+b.table+"\n"+cond+"\nLIMIT 1)", args...); err != nil {
		return false, fmt.Errorf("look for long-term events: %w", err)
	}
	return n > 0, nil
}

// unionFacets counts the facets over the events and long-term tables
// together, each event once (LIMIT 1 BY its key).
func (s *Store) unionFacets(ctx context.Context, events string, f Filter, sc scope) (Facets, error) {
	out := Facets{Events: []EventCount{}, Actors: []ActorCount{}}
	bs := s.branches(f.WorkspaceID, events, sc, all, func(q *query) { q.filters(f) })
	if len(bs) == 0 {
		return out, nil
	}
	from, args := union(bs, "timestamp_ns, id, event, actor_type, actor_id, actor_name", false, "")

	sql := fmt.Sprintf(`SELECT event, count() AS n FROM (
    SELECT event FROM %s
    LIMIT 1 BY timestamp_ns, id
) GROUP BY event ORDER BY n DESC, event LIMIT %d`, from, MaxFacets)
	if err := s.scanAll(ctx, sql, args, func(scan func(...any) error) error {
		var c EventCount
		if err := scan(&c.Name, &c.Count); err != nil {
			return err
		}
		out.Events = append(out.Events, c)
		return nil
	}); err != nil {
		return Facets{}, fmt.Errorf("event facets: %w", err)
	}

	sql = fmt.Sprintf(`SELECT actor_type, actor_id, argMax(actor_name, timestamp_ns), count() AS n FROM (
    SELECT actor_type, actor_id, actor_name, timestamp_ns FROM %s
    LIMIT 1 BY timestamp_ns, id
) GROUP BY actor_type, actor_id ORDER BY n DESC, actor_type, actor_id LIMIT %d`, from, MaxFacets)
	if err := s.scanAll(ctx, sql, args, func(scan func(...any) error) error {
		var c ActorCount
		if err := scan(&c.Type, &c.ID, &c.Name, &c.Count); err != nil {
			return err
		}
		out.Actors = append(out.Actors, c)
		return nil
	}); err != nil {
		return Facets{}, fmt.Errorf("actor facets: %w", err)
	}
	return out, nil
}

// scanAll runs sql and calls fn with a scanner for each row.
func (s *Store) scanAll(ctx context.Context, sql string, args []any, fn func(scan func(...any) error) error) error {
	return scanRows(ctx, s.conn, sql, args, fn)
}
