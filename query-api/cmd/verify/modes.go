package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/audittrail/audittrail/internal/chconn"
	"github.com/audittrail/audittrail/internal/config"
	"github.com/audittrail/audittrail/internal/kafkaconn"
	"github.com/audittrail/audittrail/internal/retentionpolicy"
	"github.com/audittrail/audittrail/query-api/store"
	"github.com/audittrail/audittrail/query-api/verify"
	"github.com/audittrail/audittrail/schemas/topics"
)

// clockSkew is how far in the future a row may have been received (the
// servers' clocks differ); a row received later than that is a problem.
const clockSkew = time.Minute

// result is what a mode found.
type result struct {
	verify.Report
	summary string
}

// print writes one line per problem and note, then a verdict, and
// returns the exit status.
func (r result) print(w io.Writer) int {
	for _, p := range r.Problems {
		fmt.Fprintln(w, "PROBLEM:", p)
	}
	for _, n := range r.Notes {
		fmt.Fprintln(w, "note:", n)
	}
	if len(r.Problems) > 0 {
		fmt.Fprintf(w, "FAILED: %d problems (%s)\n", len(r.Problems), r.summary)
		return 1
	}
	fmt.Fprintf(w, "OK: %s\n", r.summary)
	return 0
}

// common are the flags and settings every mode shares.
type common struct {
	env    *config.Env
	keys   *string
	origin string
}

func newFlags(mode string) (*flag.FlagSet, *common) {
	fs := flag.NewFlagSet("verify "+mode, flag.ContinueOnError)
	env := config.FromOS()
	c := &common{env: env, origin: config.LogOrigin.Get(env)}
	c.keys = fs.String("keys", strings.Join(config.VerifierKeys.Get(env), ","), "verifier keys, comma-separated (default "+config.VerifierKeys.Name+")")
	return fs, c
}

func (c *common) verifiers() (note.Verifiers, error) {
	vs, err := verify.Verifiers(strings.Split(*c.keys, ","))
	if err != nil {
		return nil, fmt.Errorf("flag -keys: %w", err)
	}
	return vs, nil
}

func offline(args []string) (result, error) {
	fs, c := newFlags("offline")
	path := fs.String("export", "", "the export file (NDJSON with its manifest line), or an archive file (.ndjson.gz); - for stdin")
	mkeys := fs.String("manifest-keys", strings.Join(config.ManifestVerifierKeys.Get(c.env), ","), "manifest verifier keys, comma-separated (default "+config.ManifestVerifierKeys.Name+")")
	if err := fs.Parse(args); err != nil {
		return result{}, err
	}
	if *path == "" {
		return result{}, errors.New("flag -export: name the export file")
	}
	vs, err := c.verifiers()
	if err != nil {
		return result{}, err
	}
	mvs, err := verify.Verifiers(strings.Split(*mkeys, ","))
	if err != nil {
		return result{}, fmt.Errorf("flag -manifest-keys: %w", err)
	}
	if err := verify.SeparateKeys(strings.Split(*c.keys, ","), strings.Split(*mkeys, ",")); err != nil {
		return result{}, fmt.Errorf("flag -manifest-keys: %w", err)
	}
	in := os.Stdin
	if *path != "-" {
		if in, err = os.Open(*path); err != nil {
			return result{}, fmt.Errorf("flag -export: %w", err)
		}
		defer in.Close()
	}
	rep, err := verify.Offline(in, vs, mvs, c.origin)
	return result{Report: rep, summary: fmt.Sprintf("%d rows of %s checked", rep.Checked, *path)}, err
}

func online(ctx context.Context, args []string) (result, error) {
	fs, c := newFlags("online")
	ws := fs.String("workspace", "", "the workspace whose log to walk")
	trusted := fs.String("trusted", "", "check against a checkpoint held outside ClickHouse: topic (the checkpoints topic) or state (-state)")
	statePath := fs.String("state", "", "a monitor's state file (with -trusted state)")
	grace := fs.Duration("grace", 10*time.Minute, "rows received within this time may not be sealed yet")
	days := fs.Int("retention-days", 0, "the workspace's retention window in days, 1-3650 (default: the workspace's policy as stored, else "+config.RetentionDays.Name+"; under a legal hold nothing expires): a leaf whose event is gone counts as expired when the sealer's signed tile notes put its event time before the window")
	assume := fs.Bool("assume-retention", false, "count a leaf whose row is gone as expired when its leaf row is gone or older than the retention window (not authenticated: a deleted row and leaf row pass)")
	if err := fs.Parse(args); err != nil {
		return result{}, err
	}
	if *ws == "" {
		return result{}, errors.New("flag -workspace: name the workspace")
	}
	if *days != 0 && (*days < 1 || *days > 3650) {
		return result{}, fmt.Errorf("flag -retention-days: %d is not 1-3650", *days)
	}
	vs, err := c.verifiers()
	if err != nil {
		return result{}, err
	}
	o := verify.OnlineOptions{WorkspaceID: *ws, Known: vs, Origin: c.origin}
	if o.Trusted, err = trustedCheckpoint(ctx, c, *trusted, *statePath, *ws, vs); err != nil {
		return result{}, err
	}
	src, policies, closeConn, err := storeSource(ctx, c.env)
	if err != nil {
		return result{}, err
	}
	defer closeConn()
	now := time.Now()
	window, err := expiryWindow(ctx, policies, *ws, *days)
	if err != nil {
		return result{}, err
	}
	o.AssumeRetention, o.RetentionCut = *assume, window.cut(now)
	o.UnsealedAfter, o.ReceivedBy = now.Add(-*grace).UnixNano(), now.Add(clockSkew).UnixNano()
	o.CaughtUp = sealerCaughtUp(c.env)
	rep, err := verify.Online(ctx, src, o)
	against := "ClickHouse's latest checkpoint"
	if o.Trusted != nil {
		against = fmt.Sprintf("checkpoint %d from the %s", o.Trusted.Size, *trusted)
	}
	return result{Report: rep, summary: fmt.Sprintf("%d rows of workspace %s checked against %s; %s", rep.Checked, *ws, against, window)}, err
}

// window is the retention a check counts expiry against.
type window struct {
	days int
	hold bool
	from string // where days come from
}

// expiryWindow returns the window of workspace ws: days when given
// (-retention-days), else its policy as stored (not authenticated: the
// admin API records every change in the trail, which verify checks).
func expiryWindow(ctx context.Context, policies *retentionpolicy.Cache, ws string, days int) (window, error) {
	if days != 0 {
		return window{days: days, from: "-retention-days"}, nil
	}
	p, err := policies.For(ctx, ws)
	if err != nil {
		return window{}, fmt.Errorf("read the retention policy of %s: %w", ws, err)
	}
	return window{days: p.Days, hold: p.Hold, from: "the workspace's policy"}, nil
}

// cut is the event time (ns) before which a gone event may have expired:
// none under a legal hold.
func (w window) cut(now time.Time) int64 {
	if w.hold {
		return math.MinInt64
	}
	return now.Add(-time.Duration(w.days) * 24 * time.Hour).UnixNano()
}

func (w window) String() string {
	if w.hold {
		return "legal hold (" + w.from + "): nothing expires, so every event gone is reported"
	}
	return fmt.Sprintf("retention %d days (%s)", w.days, w.from)
}

// trustedCheckpoint returns the checkpoint held outside ClickHouse that
// -trusted names, nil for none.
func trustedCheckpoint(ctx context.Context, c *common, from, statePath, ws string, vs note.Verifiers) (*verify.Checkpoint, error) {
	switch from {
	case "":
		return nil, nil
	case "state":
		s, err := verify.LoadState(statePath)
		if err != nil {
			return nil, fmt.Errorf("flag -state: %w", err)
		}
		seen, ok := s.Workspaces[ws]
		if !ok {
			return nil, fmt.Errorf("flag -state: no checkpoint of workspace %s in %s", ws, statePath)
		}
		cp, err := verify.OpenCheckpoint([]byte(seen.Note), vs, c.origin)
		cp.Label = "held outside ClickHouse: the monitor's state"
		return &cp, err
	case "topic":
		recs, err := topicRecords(ctx, c.env)
		if err != nil {
			return nil, err
		}
		cp, ok := verify.LargestValid(recs, ws, vs, c.origin)
		if !ok {
			return nil, fmt.Errorf("flag -trusted: no validly signed checkpoint of workspace %s on the checkpoints topic", ws)
		}
		cp.Label = "held outside ClickHouse: the checkpoints topic"
		return &cp, nil
	}
	return nil, fmt.Errorf("flag -trusted: %q is neither topic nor state", from)
}

func topicRecords(ctx context.Context, env *config.Env) ([]verify.Published, error) {
	kc := kafkaconn.FromEnv(env, topics.Events, topics.DefaultPartitions)
	if err := kc.Validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return verify.TopicCheckpoints(ctx, kc.Options(), config.CheckpointsTopic.Get(env))
}

// sealerCaughtUp asks Kafka whether the sealer group has sealed every
// record of the events topic (AUDITTRAIL_SEALER_GROUP,
// AUDITTRAIL_KAFKA_TOPIC).
func sealerCaughtUp(env *config.Env) func(context.Context) (bool, error) {
	kc := kafkaconn.FromEnv(env, topics.Events, topics.DefaultPartitions)
	group := config.SealerGroup.Get(env)
	return func(ctx context.Context) (bool, error) {
		if err := kc.Validate(); err != nil {
			return false, err
		}
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		return verify.SealerCaughtUp(ctx, kc.Options(), group, kc.Topic)
	}
}

// storeSource opens ClickHouse.
func storeSource(ctx context.Context, env *config.Env) (verify.StoreSource, *retentionpolicy.Cache, func(), error) {
	chc := chconn.FromEnv(env)
	if err := chc.Validate(); err != nil {
		return verify.StoreSource{}, nil, nil, err
	}
	conn, err := chconn.Open(ctx, chc)
	if err != nil {
		return verify.StoreSource{}, nil, nil, err
	}
	// Each workspace is read within its own retention policy (a legal hold:
	// everything), the long-term table of kept and restored events
	// included, so the old rows of held and longer-kept workspaces are
	// checked too.
	days := config.RetentionDays.Get(env)
	policies := retentionpolicy.NewCache(conn, chc.Database, days, time.Minute, time.Now)
	events := store.New(conn, chc.Database, days, time.Now).WithPolicies(policies)
	return verify.StoreSource{Log: store.NewLog(conn, chc.Database), Events: events}, policies, func() { conn.Close() }, nil
}
