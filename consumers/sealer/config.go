package sealer

// The sealer's configuration: its settings, their defaults, the variables
// that set them and their bounds.

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/audittrail/audittrail/internal/config"
	"github.com/audittrail/audittrail/schemas/topics"
)

// Config tunes the sealer.
type Config struct {
	// Group is the sealer's consumer group; WriterGroup the writer's, whose
	// committed offsets a record waits for before it is sealed.
	Group, WriterGroup string
	// Topic is the events topic; CheckpointsTopic receives the signed
	// checkpoints (compacted, key = workspace id).
	Topic, CheckpointsTopic string
	// BatchSize is the most records sealed in one round, BatchBytes the
	// most record bytes (a round takes at least one record).
	BatchSize  int
	BatchBytes int
	// MaxPending is the most records of a partition read and waiting for
	// the writer's commits before its fetching pauses (4 BatchSize when 0);
	// PendingBytes the most record bytes waiting in all partitions before
	// every partition with records waiting pauses.
	MaxPending   int
	PendingBytes int
	// YieldLag is how many records the writer group may lag behind the
	// end of this sealer's partitions before the sealer yields to it: it
	// then seals one round every YieldEvery until the writer is back under
	// it. 0 never yields.
	YieldLag   int
	YieldEvery time.Duration
	// CheckpointInterval is the least time between two checkpoints of a
	// workspace; one is signed only when the log grew.
	CheckpointInterval time.Duration
	// Origin names the deployment in checkpoints: <Origin>/<workspace>.
	Origin string
	// SigningKey is the note signer key checkpoints are signed with;
	// VerifierKeys must include its verifier key (and, after a rotation,
	// the old keys): loaded logs are checked against checkpoints with them.
	SigningKey   string
	VerifierKeys []string
	// SessionTimeout is how long the group waits for a crashed member.
	SessionTimeout time.Duration
	// Lookback is how far back in event time a takeover loads a
	// workspace's leaf keys (older ones are looked up in ClickHouse);
	// MaxSeen bounds them per workspace.
	Lookback time.Duration
	MaxSeen  int
	// RetentionDays is the deployment's window (AUDITTRAIL_RETENTION_DAYS):
	// the leaves of events older than it are also stored in the long-term
	// leaves table, and their keys also looked up in the long-term tables
	// (kept.go).
	RetentionDays int
	// CheckEvery is how often at most the writer's committed offsets are
	// read while records wait for them.
	CheckEvery time.Duration
	// Sample is how many of a round's new leaves have their stored row
	// read back and compared with the leaf (see sample.go); 0 reads none.
	Sample int
	// SampleEvery is the least time between the starts of two sample
	// reads; the rounds' samples between them are thinned to a uniform
	// choice of one sample's worth (checks.go).
	SampleEvery time.Duration
	// Audit is how many leaves of the logs in memory are audited every
	// AuditEvery (see audit.go); 0 audits none.
	Audit      int
	AuditEvery time.Duration
}

// Defaults returns the defaults of the config.Sealer* variables and of the
// integrity log's (without a signing key).
func Defaults() Config {
	return Config{
		Group: config.SealerGroup.Default, WriterGroup: config.WriterGroup.Default,
		Topic: topics.Events, CheckpointsTopic: config.CheckpointsTopic.Default,
		BatchSize: config.SealerBatchSize.Default, BatchBytes: config.SealerBatchBytes.Default,
		PendingBytes: config.SealerPendingBytes.Default, CheckpointInterval: config.CheckpointInterval.Default,
		YieldLag: config.SealerYieldLag.Default, YieldEvery: 5 * time.Second,
		Origin: config.LogOrigin.Default, SessionTimeout: 10 * time.Second,
		Lookback: 2 * time.Hour, MaxSeen: 1_000_000, CheckEvery: 200 * time.Millisecond,
		Sample: config.SealerSample.Default, Audit: config.SealerAudit.Default, AuditEvery: 10 * time.Second,
		SampleEvery:   time.Second,
		RetentionDays: config.RetentionDays.Default,
	}
}

// FromEnv reads the sealer's variables over Defaults; topic is the events
// topic.
func FromEnv(e *config.Env, topic string) Config {
	c := Defaults()
	c.Topic = topic
	c.Group = config.SealerGroup.Get(e)
	c.WriterGroup = config.WriterGroup.Get(e)
	c.CheckpointsTopic = config.CheckpointsTopic.Get(e)
	c.BatchSize = config.SealerBatchSize.Get(e)
	c.BatchBytes = config.SealerBatchBytes.Get(e)
	c.PendingBytes = config.SealerPendingBytes.Get(e)
	c.YieldLag = config.SealerYieldLag.Get(e)
	c.Sample = config.SealerSample.Get(e)
	c.Audit = config.SealerAudit.Get(e)
	c.CheckpointInterval = config.CheckpointInterval.Get(e)
	c.Origin = config.LogOrigin.Get(e)
	c.SigningKey = config.SigningKey.Get(e)
	c.VerifierKeys = config.VerifierKeys.Get(e)
	c.RetentionDays = config.RetentionDays.Get(e)
	return c
}

// Validate reports settings that cannot work, naming their variables.
func (c Config) Validate() error {
	errs := []error{
		config.SealerGroup.Check(c.Group), config.WriterGroup.Check(c.WriterGroup),
		config.CheckpointsTopic.Check(c.CheckpointsTopic), config.SealerBatchSize.Check(c.BatchSize),
		config.SealerBatchBytes.Check(c.BatchBytes), config.SealerPendingBytes.Check(c.PendingBytes),
		config.SealerYieldLag.Check(c.YieldLag), config.SealerSample.Check(c.Sample),
		config.SealerAudit.Check(c.Audit),
		config.CheckpointInterval.Check(c.CheckpointInterval), config.LogOrigin.Check(c.Origin),
		config.RetentionDays.Check(c.RetentionDays),
	}
	if c.Group == c.WriterGroup {
		errs = append(errs, fmt.Errorf("%s and %s are both %q: the sealer needs its own group", config.SealerGroup.Name, config.WriterGroup.Name, c.Group))
	}
	if c.Origin == "" || strings.ContainsAny(c.Origin, " /\n\t") {
		errs = append(errs, config.LogOrigin.Invalid(c.Origin))
	}
	if c.MaxPending < 0 || c.MaxSeen < 1 || c.Lookback < 0 || c.CheckEvery <= 0 || c.SessionTimeout <= 0 || (c.YieldLag > 0 && c.YieldEvery <= 0) || (c.Audit > 0 && c.AuditEvery <= 0) || c.SampleEvery < 0 {
		errs = append(errs, errors.New("sealer: MaxPending, MaxSeen, Lookback, CheckEvery, SessionTimeout, (with YieldLag) YieldEvery and (with Audit) AuditEvery must be positive, SampleEvery not negative"))
	}
	if c.RetentionDays > 0 && c.Lookback >= c.window()-lateMargin {
		// Keys inside the lookback are decided in memory, from the leaves
		// table only: none may be late (kept.go).
		errs = append(errs, fmt.Errorf("sealer: Lookback (%s) must be shorter than %s (%d days) less %s", c.Lookback, config.RetentionDays.Name, c.RetentionDays, lateMargin))
	}
	_, err := c.signer()
	return errors.Join(append(errs, err)...)
}

// signer returns the checkpoints' signer, checking that the verifier keys
// (when set) include its own.
func (c Config) signer() (note.Signer, error) {
	if c.SigningKey == "" {
		return nil, fmt.Errorf("%s is empty: the sealer signs checkpoints with it (scripts/up generates one; sealer -generate-key prints a pair)", config.SigningKey.Name)
	}
	s, err := note.NewSigner(c.SigningKey)
	if err != nil {
		return nil, config.SigningKey.Refused()
	}
	if len(c.VerifierKeys) == 0 {
		return nil, fmt.Errorf("%s is empty: the sealer checks the logs it loads against their signed checkpoints with them (include the verifier key of %s)", config.VerifierKeys.Name, config.SigningKey.Name)
	}
	var names []string
	for _, vk := range c.VerifierKeys {
		v, err := note.NewVerifier(vk)
		if err != nil {
			return nil, fmt.Errorf("%s: %q is not a note verifier key (%v)", config.VerifierKeys.Name, vk, err)
		}
		if v.Name() == s.Name() && v.KeyHash() == s.KeyHash() {
			return s, nil
		}
		names = append(names, v.Name())
	}
	slices.Sort(names)
	return nil, fmt.Errorf("%s (%v) lacks the verifier key of %s (key %s): add it, or checkpoints will not verify", config.VerifierKeys.Name, names, config.SigningKey.Name, s.Name())
}

// window is the deployment's retention window.
func (c Config) window() time.Duration { return time.Duration(c.RetentionDays) * 24 * time.Hour }

func (c Config) maxPending() int {
	if c.MaxPending > 0 {
		return c.MaxPending
	}
	return 4 * c.BatchSize
}

// verifiers returns the note verifiers of VerifierKeys (Validate checked
// them).
func (c Config) verifiers() note.Verifiers {
	var vs []note.Verifier
	for _, vk := range c.VerifierKeys {
		if v, err := note.NewVerifier(vk); err == nil {
			vs = append(vs, v)
		}
	}
	return note.VerifierList(vs...)
}
