package sealer

import (
	"context"

	"github.com/audittrail/audittrail/schemas/migrations"
)

// memKept is memStore's long-term tables: the rows kept by their policy
// and the long-term leaves, with counts of the lookups made in them.
type memKept struct {
	rows   map[Key]migrations.Row
	leaves map[string]map[uint64]migrations.Leaf
	// leafLookups and rowLookups count the keys looked up; appended the
	// leaves stored.
	leafLookups, rowLookups, appended int
	// failAppend makes AppendKept fail (nothing stored).
	failAppend bool
}

// keep stores r in the long-term table only (its week was dropped).
func (m *memStore) keep(r migrations.Row) Key {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := Key{r.WorkspaceID, r.TimestampNs, r.ID}
	if m.kept.rows == nil {
		m.kept.rows = map[Key]migrations.Row{}
	}
	m.kept.rows[k] = r
	return k
}

// dropLeaves removes the leaf rows of the leaves table whose event time
// is before ns, as the retention job's drop of their days.
func (m *memStore) dropLeaves(before int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, ls := range m.leaves {
		for i, l := range ls {
			if l.TimestampNs < before {
				delete(ls, i)
			}
		}
	}
}

func (m *memStore) KeptLeaves(_ context.Context, keys []Key) (map[Key]bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.kept.leafLookups += len(keys)
	out := map[Key]bool{}
	for _, k := range keys {
		for _, l := range m.kept.leaves[k.WorkspaceID] {
			if l.ID == k.ID {
				out[k] = true
			}
		}
	}
	return out, nil
}

func (m *memStore) KeptRows(_ context.Context, keys []Key) (map[Key]migrations.Row, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.kept.rowLookups += len(keys)
	out := map[Key]migrations.Row{}
	for _, k := range keys {
		if r, ok := m.kept.rows[k]; ok {
			out[k] = r
		}
	}
	return out, nil
}

func (m *memStore) AppendKept(_ context.Context, leaves []migrations.Leaf) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.kept.failAppend {
		return errCrash
	}
	if m.kept.leaves == nil {
		m.kept.leaves = map[string]map[uint64]migrations.Leaf{}
	}
	for _, l := range leaves {
		if m.kept.leaves[l.WorkspaceID] == nil {
			m.kept.leaves[l.WorkspaceID] = map[uint64]migrations.Leaf{}
		}
		m.kept.leaves[l.WorkspaceID][l.Index] = l
		m.kept.appended++
	}
	return nil
}
