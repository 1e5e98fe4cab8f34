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

// Defaults returns the default configuration: the declared defaults of
// the config.Forwarder* variables, config.SettingsTopic and
// config.RetentionDays. RetryMin is config.ForwarderRetryMax's minimum.
func Defaults() Config {
	return Config{
		Group: config.ForwarderGroup.Default, WriterGroup: config.WriterGroup.Default, Topic: topics.Events, SettingsTopic: config.SettingsTopic.Default,
		DeadLetterTopic: config.ForwarderDLQTopic.Default,
		Workers:         config.ForwarderWorkers.Default, MaxInFlight: config.ForwarderMaxInFlight.Default, BatchEvents: 500,
		RequestTimeout: config.ForwarderRequestTimeout.Default,
		RetryMin:       config.ForwarderRetryMax.Min, RetryMax: config.ForwarderRetryMax.Default, RetryAfterMax: 5 * time.Minute,
		MaxAttempts:       config.ForwarderMaxAttempts.Default,
		MaxSplitRequests:  64,
		ViolationInterval: config.ForwarderViolationInterval.Default,
		ShutdownTimeout:   20 * time.Second,
		RetentionDays:     config.RetentionDays.Default, DedupeMaxIDs: config.ForwarderDedupeMaxIDs.Default,
		RegistryTimeout: 15 * time.Second,
	}
}

// FromEnv reads the config.Forwarder* variables, config.SettingsTopic,
// config.RetentionDays and config.ForwardAllowedTargets.
func FromEnv(e *config.Env, topic string) Config {
	c := Defaults()
	c.Topic = topic
	c.Group = config.ForwarderGroup.Get(e)
	c.WriterGroup = config.WriterGroup.Get(e)
	c.SettingsTopic = config.SettingsTopic.Get(e)
	c.DeadLetterTopic = config.ForwarderDLQTopic.Get(e)
	c.Workers = config.ForwarderWorkers.Get(e)
	c.MaxInFlight = config.ForwarderMaxInFlight.Get(e)
	c.RequestTimeout = config.ForwarderRequestTimeout.Get(e)
	c.MaxAttempts = config.ForwarderMaxAttempts.Get(e)
	c.RetryMax = config.ForwarderRetryMax.Get(e)
	c.ViolationInterval = config.ForwarderViolationInterval.Get(e)
	c.RetentionDays = config.RetentionDays.Get(e)
	c.DedupeMaxIDs = config.ForwarderDedupeMaxIDs.Get(e)
	c.Egress = egress.FromEnv(e)
	return c
}

// Validate reports configuration that cannot work; each message about a
// variable names it and what it accepts.
func (c Config) Validate() error {
	errs := []error{
		config.ForwarderGroup.Check(c.Group),
		config.ForwarderWorkers.Check(c.Workers),
		config.ForwarderMaxInFlight.Check(c.MaxInFlight),
		config.ForwarderRequestTimeout.Check(c.RequestTimeout),
		config.ForwarderMaxAttempts.Check(c.MaxAttempts),
		config.ForwarderViolationInterval.Check(c.ViolationInterval),
		config.RetentionDays.Check(c.RetentionDays),
		config.ForwarderDedupeMaxIDs.Check(c.DedupeMaxIDs),
		c.Egress.Validate(),
	}
	if c.Topic == "" || c.SettingsTopic == "" || c.DeadLetterTopic == "" ||
		c.Topic == c.SettingsTopic || c.Topic == c.DeadLetterTopic || c.SettingsTopic == c.DeadLetterTopic {
		errs = append(errs, fmt.Errorf("topics %q, %q and %q: all required and distinct", c.Topic, c.SettingsTopic, c.DeadLetterTopic))
	}
	if c.BatchEvents < 1 || c.BatchEvents > 10_000 {
		errs = append(errs, fmt.Errorf("batch events %d: want 1-10000", c.BatchEvents))
	}
	if c.MaxSplitRequests < 0 || c.MaxSplitRequests > 10_000 {
		errs = append(errs, fmt.Errorf("max split requests %d: want 0-10000", c.MaxSplitRequests))
	}
	if c.RetryMin <= 0 || c.RetryMax < c.RetryMin || c.RetryAfterMax < c.RetryMin {
		errs = append(errs, config.ForwarderRetryMax.Errorf(c.RetryMax, "at least "+config.FormatDuration(c.RetryMin)+" ("+config.ForwarderRetryMax.Note+")"))
	}
	if c.RegistryTimeout <= 0 {
		errs = append(errs, fmt.Errorf("registry timeout %s: want > 0", c.RegistryTimeout))
	}
	return errors.Join(errs...)
}
