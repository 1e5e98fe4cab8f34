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
	// BatchBytes bounds a batch's record bytes (keys and values): it is
	// also written once its records hold BatchBytes, so the batches in
	// flight hold a bounded amount of memory whatever the records' size.
	BatchBytes int
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
	// RecordOffsets makes the writer record, per record it consumed, what
	// it did with it (migrations.OffsetsTable), before it commits the
	// record: the sealer reads its rounds from there (docs/integrity.md).
	RecordOffsets bool
}

// Defaults returns the default configuration: the declared defaults of
// the config.Writer* variables and config.RetentionDays.
func Defaults() Config {
	return Config{
		Group: config.WriterGroup.Default, Topic: topics.Events, DeadLetterTopic: config.WriterDLQTopic.Default,
		BatchSize: config.WriterBatchSize.Default, BatchAge: config.WriterBatchAge.Default,
		BatchBytes:    config.WriterBatchBytes.Default,
		RetentionDays: config.RetentionDays.Default,
		RetryMin:      100 * time.Millisecond, RetryMax: 5 * time.Second, ShutdownTimeout: 20 * time.Second,
		SessionTimeout: config.WriterSessionTimeout.Default,
		DedupeWindow:   config.WriterDedupeWindow.Default, DedupeMaxIDs: config.WriterDedupeMaxIDs.Default,
		InsertStreams: config.WriterInsertStreams.Default,
		RecordOffsets: config.WriterRecordOffsets.Default,
	}
}

// FromEnv reads the config.Writer* variables and config.RetentionDays.
// The idempotency window defaults to the retention window read and a day.
func FromEnv(e *config.Env, topic string) Config {
	c := Defaults()
	c.Topic = topic
	c.Group = config.WriterGroup.Get(e)
	c.DeadLetterTopic = config.WriterDLQTopic.Get(e)
	c.BatchSize = config.WriterBatchSize.Get(e)
	c.BatchAge = config.WriterBatchAge.Get(e)
	c.BatchBytes = config.WriterBatchBytes.Get(e)
	c.RetentionDays = config.RetentionDays.Get(e)
	c.SessionTimeout = config.WriterSessionTimeout.Get(e)
	c.InstanceID = config.WriterInstanceID.Get(e)
	c.DedupeWindow = config.WriterDedupeWindow.GetOr(e, idwindow.RegistrySpan(c.RetentionDays))
	c.DedupeMaxIDs = config.WriterDedupeMaxIDs.Get(e)
	c.InsertStreams = config.WriterInsertStreams.Get(e)
	c.RecordOffsets = config.WriterRecordOffsets.Get(e)
	return c
}

// Validate reports configuration that cannot work; each message names the
// variable and what it accepts.
func (c Config) Validate() error {
	errs := []error{
		config.WriterGroup.Check(c.Group),
		config.WriterBatchSize.Check(c.BatchSize),
		config.WriterBatchAge.Check(c.BatchAge),
		config.WriterBatchBytes.Check(c.BatchBytes),
		config.RetentionDays.Check(c.RetentionDays),
		config.WriterSessionTimeout.Check(c.SessionTimeout),
		config.WriterDedupeMaxIDs.Check(c.DedupeMaxIDs),
		config.WriterInsertStreams.Check(c.InsertStreams),
	}
	if c.Topic == "" || c.DeadLetterTopic == "" || c.Topic == c.DeadLetterTopic {
		errs = append(errs, fmt.Errorf("topics %q and %q: both required and distinct", c.Topic, c.DeadLetterTopic))
	}
	if span := idwindow.RegistrySpan(c.RetentionDays); c.DedupeWindow < 0 || c.DedupeWindow > span {
		errs = append(errs, config.WriterDedupeWindow.Errorf(c.DedupeWindow, fmt.Sprintf("0-%s (the id registry keeps ids for the retention window and a day, %d days)",
			config.FormatDuration(span), migrations.IDsRetentionDays(c.RetentionDays))))
	}
	if c.RetryMin <= 0 || c.RetryMax < c.RetryMin {
		errs = append(errs, fmt.Errorf("retry backoff %s-%s: want 0 < min <= max", c.RetryMin, c.RetryMax))
	}
	return errors.Join(errs...)
}
