package writer

// The writer's configuration: its settings, their defaults, the variables
// that set them and their bounds.

import (
	"errors"
	"fmt"
	"time"

	"github.com/audittrail/audittrail/consumers/idwindow"
	"github.com/audittrail/audittrail/internal/config"
	"github.com/audittrail/audittrail/schemas/migrations"
	"github.com/audittrail/audittrail/schemas/topics"
)

// Config tunes the writer.
type Config struct {
	// Group is the consumer group id.
	Group string
	// Topic is read; DeadLetterTopic receives poison records.
	Topic           string
	DeadLetterTopic string
	// BatchSize and BatchAge bound a batch: it is written when it holds
	// BatchSize rows or its oldest row waited BatchAge, whichever is first.
	BatchSize int
	BatchAge  time.Duration
	// RetentionDays: events older than this on arrival are not stored.
	RetentionDays int
	// RetryMin and RetryMax bound the exponential backoff between failed
	// inserts.
	RetryMin, RetryMax time.Duration
	// ShutdownTimeout bounds the final flush and commit.
	ShutdownTimeout time.Duration
	// SessionTimeout is how long the group waits for a member that stopped
	// heartbeating (a crashed instance) before moving its partitions.
	SessionTimeout time.Duration
	// InstanceID, when set, makes this instance a static group member: a
	// restarted instance with the same id gets its partitions back at once
	// instead of after SessionTimeout. Each instance needs its own id.
	InstanceID string
	// DedupeWindow and DedupeMaxIDs bound the idempotency window: an event
	// whose (workspace_id, id) was stored within DedupeWindow, and is among
	// the last DedupeMaxIDs ids stored, is not stored again, whatever its
	// timestamp. By default the window spans the whole retention window and
	// a day (as long as the id registry keeps ids), so only DedupeMaxIDs
	// bounds it. Zero DedupeWindow turns the window off (replays with the
	// same timestamp still collapse in the table).
	DedupeWindow time.Duration
	DedupeMaxIDs int
	// InsertStreams is how many batches are inserted at once, each on its
	// own connection: ClickHouse writes one batch's parts while the next
	// batch streams in. Offsets are still marked in batch order.
	InsertStreams int
}

// Defaults returns the default configuration.
func Defaults() Config {
	return Config{
		Group: "audittrail-writer", Topic: topics.Events, DeadLetterTopic: topics.DeadLetters,
		BatchSize: 100_000, BatchAge: 250 * time.Millisecond, RetentionDays: 90,
		RetryMin: 100 * time.Millisecond, RetryMax: 5 * time.Second, ShutdownTimeout: 20 * time.Second,
		SessionTimeout: 10 * time.Second,
		DedupeWindow:   idwindow.RegistrySpan(90), DedupeMaxIDs: 1_000_000, InsertStreams: 2,
	}
}

// FromEnv reads the AUDITTRAIL_WRITER_* variables and AUDITTRAIL_RETENTION_DAYS.
func FromEnv(e *config.Env, topic string) Config {
	c := Defaults()
	c.Topic = topic
	c.Group = e.String("AUDITTRAIL_WRITER_GROUP", c.Group)
	c.DeadLetterTopic = e.String("AUDITTRAIL_WRITER_DLQ_TOPIC", c.DeadLetterTopic)
	c.BatchSize = e.Int("AUDITTRAIL_WRITER_BATCH_SIZE", c.BatchSize)
	c.BatchAge = e.Duration("AUDITTRAIL_WRITER_BATCH_AGE", c.BatchAge)
	c.RetentionDays = e.Int("AUDITTRAIL_RETENTION_DAYS", c.RetentionDays)
	c.SessionTimeout = e.Duration("AUDITTRAIL_WRITER_SESSION_TIMEOUT", c.SessionTimeout)
	c.InstanceID = e.String("AUDITTRAIL_WRITER_INSTANCE_ID", "")
	c.DedupeWindow = e.Duration("AUDITTRAIL_WRITER_DEDUPE_WINDOW", idwindow.RegistrySpan(c.RetentionDays))
	c.DedupeMaxIDs = e.Int("AUDITTRAIL_WRITER_DEDUPE_MAX_IDS", c.DedupeMaxIDs)
	c.InsertStreams = e.Int("AUDITTRAIL_WRITER_INSERT_STREAMS", c.InsertStreams)
	return c
}

// Validate reports configuration that cannot work.
func (c Config) Validate() error {
	var errs []error
	if c.Group == "" {
		errs = append(errs, errors.New("AUDITTRAIL_WRITER_GROUP is empty"))
	}
	if c.Topic == "" || c.DeadLetterTopic == "" || c.Topic == c.DeadLetterTopic {
		errs = append(errs, fmt.Errorf("topics %q and %q: both required and distinct", c.Topic, c.DeadLetterTopic))
	}
	if c.BatchSize < 1 || c.BatchSize > 1_000_000 {
		errs = append(errs, fmt.Errorf("AUDITTRAIL_WRITER_BATCH_SIZE=%d: want 1-1000000", c.BatchSize))
	}
	if c.BatchAge < time.Millisecond || c.BatchAge > time.Minute {
		errs = append(errs, fmt.Errorf("AUDITTRAIL_WRITER_BATCH_AGE=%s: want 1ms-1m", c.BatchAge))
	}
	if c.RetentionDays < 1 || c.RetentionDays > 3650 {
		errs = append(errs, fmt.Errorf("AUDITTRAIL_RETENTION_DAYS=%d: want 1-3650", c.RetentionDays))
	}
	if c.SessionTimeout < 6*time.Second || c.SessionTimeout > 5*time.Minute {
		errs = append(errs, fmt.Errorf("AUDITTRAIL_WRITER_SESSION_TIMEOUT=%s: want 6s-5m (the broker's group session bounds)", c.SessionTimeout))
	}
	if span := idwindow.RegistrySpan(c.RetentionDays); c.DedupeWindow < 0 || c.DedupeWindow > span {
		errs = append(errs, fmt.Errorf("AUDITTRAIL_WRITER_DEDUPE_WINDOW=%s: want 0-%s (the id registry keeps ids for the retention window and a day, %d days)",
			c.DedupeWindow, span, migrations.IDsRetentionDays(c.RetentionDays)))
	}
	if c.DedupeMaxIDs < 1 || c.DedupeMaxIDs > 100_000_000 {
		errs = append(errs, fmt.Errorf("AUDITTRAIL_WRITER_DEDUPE_MAX_IDS=%d: want 1-100000000", c.DedupeMaxIDs))
	}
	if c.InsertStreams < 1 || c.InsertStreams > 16 {
		errs = append(errs, fmt.Errorf("AUDITTRAIL_WRITER_INSERT_STREAMS=%d: want 1-16", c.InsertStreams))
	}
	if c.RetryMin <= 0 || c.RetryMax < c.RetryMin {
		errs = append(errs, fmt.Errorf("retry backoff %s-%s: want 0 < min <= max", c.RetryMin, c.RetryMax))
	}
	return errors.Join(errs...)
}
