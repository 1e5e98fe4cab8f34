package retention

import (
	"context"
	"time"
)

// Archiver writes a workspace's events of one UTC day before they expire.
//
// The enforcer calls Archive for every (workspace, day) with rows it is
// about to delete or drop (not those it moves to the long-term table),
// before deleting anything of them, while the day's events and their
// integrity log leaves are still stored. When Archive returns an error,
// nothing of that workspace and day is deleted in this run (it is tried
// again at the next one), and
// audittrail_writer_retention_archive_failures_total counts the failure.
// A day may be passed again in a later run (a partition drop or a delete
// that did not complete), so Archive must be idempotent. day is midnight
// UTC of the day.
type Archiver interface {
	Archive(ctx context.Context, workspace string, day time.Time) error
}

// SetArchiver makes e archive what it is about to expire with a (nil for
// none, the default). It returns e and must be called before e is used.
func (e *Enforcer) SetArchiver(a Archiver) *Enforcer {
	e.archiver = a
	return e
}
