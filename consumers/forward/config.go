package forward

import (
	"errors"
	"fmt"
	"time"

	"github.com/audittrail/audittrail/internal/config"
	"github.com/audittrail/audittrail/internal/egress"
	"github.com/audittrail/audittrail/schemas/topics"
)

// Config tunes the forwarder.
type Config struct {
	// Group is the forwarder's consumer group id (distinct from the writer's).
	Group string
	// WriterGroup is the writer's group (AUDITTRAIL_WRITER_GROUP): after a
	// partition-count increase, a moved workspace's records wait until
	// both groups are past its old partition (consumers/handover).
	WriterGroup string
	// Topic is the events topic; SettingsTopic the compacted settings
	// table; DeadLetterTopic receives undeliverable events.
	Topic, SettingsTopic, DeadLetterTopic string
	// Workers deliver concurrently, each to one target at a time.
	Workers int
	// MaxInFlight bounds the records read but not yet delivered or
	// dead-lettered; reading pauses when it is reached.
	MaxInFlight int
	// BatchEvents bounds the events of one request (the request is also
	// bounded to 500 KB and each event to 32 KB).
	BatchEvents int
	// RequestTimeout bounds one HTTP request.
	RequestTimeout time.Duration
	// RetryMin and RetryMax bound the exponential backoff (with jitter)
	// between attempts; MaxAttempts attempts are made before an event is
	// dead-lettered. RetryAfterMax caps an honoured Retry-After.
	RetryMin, RetryMax, RetryAfterMax time.Duration
	MaxAttempts                       int
	// MaxSplitRequests bounds the requests made to isolate the events of
	// a batch the target rejected (by halving it); what is not isolated
	// then is dead-lettered together.
	MaxSplitRequests int
	// ViolationInterval is how often tracking-plan violations are
	// recorded as one "Violations Detected" event per workspace.
	ViolationInterval time.Duration
	// ShutdownTimeout bounds the drain of in-flight deliveries at shutdown.
	ShutdownTimeout time.Duration
	// RetentionDays is the retention window of the events: the forwarder
	// remembers the first version of every id for the retention window and
	// a day, as the writer does (idwindow.RegistrySpan).
	RetentionDays int
	// DedupeMaxIDs bounds the ids remembered (loaded from the writer's id
	// registry when partitions are assigned, and those the forwarder
	// finished since), oldest forgotten first.
	DedupeMaxIDs int
	// RegistryTimeout bounds loading the registered ids of the partitions
	// of one assignment; reading waits for it. What is not loaded in time
	// is not remembered (a warning and
	// audittrail_forwarder_registry_load_errors_total say so).
	RegistryTimeout time.Duration
	// Egress is the outbound policy of deliveries and alerts
	// (AUDITTRAIL_FORWARD_ALLOWED_TARGETS).
	Egress egress.Config
}

// Defaults returns the default configuration.
func Defaults() Config {
	return Config{
		Group: "audittrail-forwarder", WriterGroup: "audittrail-writer", Topic: topics.Events, SettingsTopic: topics.Settings,
		DeadLetterTopic: topics.ForwardDeadLetters,
		Workers:         64, MaxInFlight: 100_000, BatchEvents: 500,
		RequestTimeout: 10 * time.Second,
		RetryMin:       200 * time.Millisecond, RetryMax: 30 * time.Second, RetryAfterMax: 5 * time.Minute,
		MaxAttempts:       10,
		MaxSplitRequests:  64,
		ViolationInterval: time.Minute,
		ShutdownTimeout:   20 * time.Second,
		RetentionDays:     90, DedupeMaxIDs: 1_000_000, RegistryTimeout: 15 * time.Second,
	}
}

// FromEnv reads the AUDITTRAIL_FORWARDER_* variables,
// AUDITTRAIL_RETENTION_DAYS and AUDITTRAIL_FORWARD_ALLOWED_TARGETS.
func FromEnv(e *config.Env, topic string) Config {
	c := Defaults()
	c.Topic = topic
	c.Group = e.String("AUDITTRAIL_FORWARDER_GROUP", c.Group)
	c.WriterGroup = e.String("AUDITTRAIL_WRITER_GROUP", c.WriterGroup)
	c.SettingsTopic = e.String("AUDITTRAIL_SETTINGS_TOPIC", c.SettingsTopic)
	c.DeadLetterTopic = e.String("AUDITTRAIL_FORWARDER_DLQ_TOPIC", c.DeadLetterTopic)
	c.Workers = e.Int("AUDITTRAIL_FORWARDER_WORKERS", c.Workers)
	c.MaxInFlight = e.Int("AUDITTRAIL_FORWARDER_MAX_IN_FLIGHT", c.MaxInFlight)
	c.RequestTimeout = e.Duration("AUDITTRAIL_FORWARDER_REQUEST_TIMEOUT", c.RequestTimeout)
	c.MaxAttempts = e.Int("AUDITTRAIL_FORWARDER_MAX_ATTEMPTS", c.MaxAttempts)
	c.RetryMax = e.Duration("AUDITTRAIL_FORWARDER_RETRY_MAX", c.RetryMax)
	c.ViolationInterval = e.Duration("AUDITTRAIL_FORWARDER_VIOLATION_INTERVAL", c.ViolationInterval)
	c.RetentionDays = e.Int("AUDITTRAIL_RETENTION_DAYS", c.RetentionDays)
	c.DedupeMaxIDs = e.Int("AUDITTRAIL_FORWARDER_DEDUPE_MAX_IDS", c.DedupeMaxIDs)
	c.Egress = egress.FromEnv(e)
	return c
}

// Validate reports configuration that cannot work.
func (c Config) Validate() error {
	var errs []error
	if c.Group == "" {
		errs = append(errs, errors.New("AUDITTRAIL_FORWARDER_GROUP is empty"))
	}
	if c.Topic == "" || c.SettingsTopic == "" || c.DeadLetterTopic == "" ||
		c.Topic == c.SettingsTopic || c.Topic == c.DeadLetterTopic || c.SettingsTopic == c.DeadLetterTopic {
		errs = append(errs, fmt.Errorf("topics %q, %q and %q: all required and distinct", c.Topic, c.SettingsTopic, c.DeadLetterTopic))
	}
	if c.Workers < 1 || c.Workers > 10_000 {
		errs = append(errs, fmt.Errorf("AUDITTRAIL_FORWARDER_WORKERS=%d: want 1-10000", c.Workers))
	}
	if c.MaxInFlight < 1 || c.MaxInFlight > 10_000_000 {
		errs = append(errs, fmt.Errorf("AUDITTRAIL_FORWARDER_MAX_IN_FLIGHT=%d: want 1-10000000", c.MaxInFlight))
	}
	if c.BatchEvents < 1 || c.BatchEvents > 10_000 {
		errs = append(errs, fmt.Errorf("batch events %d: want 1-10000", c.BatchEvents))
	}
	if c.RequestTimeout < 10*time.Millisecond || c.RequestTimeout > 10*time.Minute {
		errs = append(errs, fmt.Errorf("AUDITTRAIL_FORWARDER_REQUEST_TIMEOUT=%s: want 10ms-10m", c.RequestTimeout))
	}
	if c.MaxAttempts < 1 || c.MaxAttempts > 100 {
		errs = append(errs, fmt.Errorf("AUDITTRAIL_FORWARDER_MAX_ATTEMPTS=%d: want 1-100", c.MaxAttempts))
	}
	if c.MaxSplitRequests < 0 || c.MaxSplitRequests > 10_000 {
		errs = append(errs, fmt.Errorf("max split requests %d: want 0-10000", c.MaxSplitRequests))
	}
	if c.RetryMin <= 0 || c.RetryMax < c.RetryMin || c.RetryAfterMax < c.RetryMin {
		errs = append(errs, fmt.Errorf("AUDITTRAIL_FORWARDER_RETRY_MAX=%s: want >= %s", c.RetryMax, c.RetryMin))
	}
	if c.ViolationInterval < 10*time.Millisecond {
		errs = append(errs, fmt.Errorf("AUDITTRAIL_FORWARDER_VIOLATION_INTERVAL=%s: want >= 10ms", c.ViolationInterval))
	}
	if c.RetentionDays < 1 || c.RetentionDays > 3650 {
		errs = append(errs, fmt.Errorf("AUDITTRAIL_RETENTION_DAYS=%d: want 1-3650", c.RetentionDays))
	}
	if c.DedupeMaxIDs < 1 || c.DedupeMaxIDs > 100_000_000 {
		errs = append(errs, fmt.Errorf("AUDITTRAIL_FORWARDER_DEDUPE_MAX_IDS=%d: want 1-100000000", c.DedupeMaxIDs))
	}
	if c.RegistryTimeout <= 0 {
		errs = append(errs, fmt.Errorf("registry timeout %s: want > 0", c.RegistryTimeout))
	}
	if err := c.Egress.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
