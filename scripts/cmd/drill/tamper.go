package main

// The tamper drill: the real gateway, writer and sealer build a signed
// log, an attacker with ClickHouse access changes the trail, and the
// verify binary must name every change. It stops no server.

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/mod/sumdb/note"

	"github.com/audittrail/audittrail/internal/proctest"
	"github.com/audittrail/audittrail/query-api/store"
	"github.com/audittrail/audittrail/query-api/verify"
	"github.com/audittrail/audittrail/query-api/verify/tampertest"
	"github.com/audittrail/audittrail/schemas/migrations"
)

const (
	tamperScenario  = "tamper"
	tamperWorkspace = "ws_0000" // the busiest workspace of the load
	tamperOrigin    = "drill.audittrail"
)

// tamperEnv is the tamper drill's state beyond the scenario's env.
type tamperEnv struct {
	*env
	checkpoints, sealerGroup string
	signer                   note.Signer
	state                    string // the monitor's state file
}

func runTamper(ctx context.Context, o options, bins map[string]string) (res result) {
	res.Scenario = tamperScenario
	t, err := newTamperEnv(o, bins)
	if err != nil {
		res.Err = err.Error()
		return res
	}
	defer t.cleanup()
	if err := t.build(ctx, &res); err != nil {
		res.Err = err.Error()
		t.printLogs()
		return res
	}
	if err := t.drill(ctx); err != nil {
		res.Err = err.Error()
	}
	return res
}

func newTamperEnv(o options, bins map[string]string) (*tamperEnv, error) {
	o.load, o.rate = 3*time.Second, 200
	t := &tamperEnv{env: newEnv(o, bins, tamperScenario)}
	skey, vkey, err := note.GenerateKey(rand.Reader, tamperOrigin)
	if err != nil {
		return nil, err
	}
	if t.signer, err = note.NewSigner(skey); err != nil {
		return nil, err
	}
	t.checkpoints, t.sealerGroup = "drill-checkpoints-"+t.sfx, "drill-sealer-"+t.sfx
	t.vars = append(t.vars, "AUDITTRAIL_SEALER_ADDR="+proctest.AnyPort, "AUDITTRAIL_SEALER_GROUP="+t.sealerGroup,
		"AUDITTRAIL_CHECKPOINTS_TOPIC="+t.checkpoints, "AUDITTRAIL_SIGNING_KEY="+skey, "AUDITTRAIL_VERIFIER_KEYS="+vkey,
		"AUDITTRAIL_LOG_ORIGIN="+tamperOrigin, "AUDITTRAIL_CHECKPOINT_INTERVAL=500ms")
	dir, err := os.MkdirTemp("", "audittrail-tamper-")
	if err != nil {
		return nil, err
	}
	t.state = filepath.Join(dir, "monitor-state.json")
	return t, nil
}

func (t *tamperEnv) cleanup() {
	t.stop("sealer", syscall.SIGTERM)
	os.RemoveAll(filepath.Dir(t.state))
	if t.producer != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		adm := kadm.NewClient(t.producer)
		_, _ = adm.DeleteTopics(ctx, t.checkpoints)
		_, _ = adm.DeleteGroup(ctx, t.sealerGroup)
		_, _ = adm.DeleteGroup(ctx, t.group)
		cancel()
	}
	t.env.cleanup()
}

// build runs the pipeline with the sealer under a short load and waits
// until every accepted event is stored and the workspace's log is sealed
// in a checkpoint.
func (t *tamperEnv) build(ctx context.Context, res *result) error {
	if err := t.setUp(ctx, ""); err != nil {
		return err
	}
	if err := t.start("sealer"); err != nil {
		return err
	}
	lctx, cancel := context.WithTimeout(ctx, t.o.load)
	t.steadyLoad(lctx, false)
	cancel()
	got, err := t.settle(ctx)
	if err != nil {
		return err
	}
	res.Accepted, res.Stored = len(t.accepted), len(got)
	if res.Stored < res.Accepted {
		return fmt.Errorf("%d of %d accepted events stored", res.Stored, res.Accepted)
	}
	return t.waitSealed(ctx)
}

// waitSealed waits until the workspace's latest checkpoint covers every
// stored event of it.
func (t *tamperEnv) waitSealed(ctx context.Context) error {
	lg := store.NewLog(t.chConn, t.db)
	events := store.New(t.chConn, t.db, 90, time.Now)
	deadline := time.Now().Add(t.o.settle)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		n, err := events.Count(ctx, store.Filter{WorkspaceID: tamperWorkspace})
		if err != nil {
			return err
		}
		cp, err := lg.LatestCheckpoint(ctx, tamperWorkspace)
		if err == nil && n > 3 && cp.Size == int64(n) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("workspace %s: %d events stored, latest checkpoint %d (%v) after %s", tamperWorkspace, n, cp.Size, err, t.o.settle)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// verify runs the verify binary and returns its output; it fails unless
// the exit status is want.
func (t *tamperEnv) verify(want int, args ...string) (string, error) {
	cmd := exec.Command(t.bins["verify"], args...)
	cmd.Env = append(os.Environ(), t.vars...)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		return "", err
	}
	if code := cmd.ProcessState.ExitCode(); code != want {
		return string(out), fmt.Errorf("verify %s: exit %d, want %d:\n%s", strings.Join(args, " "), code, want, out)
	}
	fmt.Fprintf(os.Stderr, "drill: tamper: verify %s:\n%s", strings.Join(args, " "), out)
	return string(out), nil
}

// expect checks that out holds every phrase.
func expect(out string, phrases ...string) error {
	for _, p := range phrases {
		if !strings.Contains(out, p) {
			return fmt.Errorf("verify did not report %q:\n%s", p, out)
		}
	}
	return nil
}

// publish puts a checkpoint note on the checkpoints topic.
func (t *tamperEnv) publish(ctx context.Context, ws, msg string) error {
	return t.producer.ProduceSync(ctx, &kgo.Record{Topic: t.checkpoints, Key: []byte(ws), Value: []byte(msg)}).FirstErr()
}

// signed returns a checkpoint of the workspace signed by s.
func signed(s note.Signer, ws string, size int64, root []byte) (string, error) {
	text := fmt.Sprintf("%s/%s\n%d\n%s\n", tamperOrigin, ws, size, base64.StdEncoding.EncodeToString(root))
	msg, err := note.Sign(&note.Note{Text: text}, s)
	return string(msg), err
}

// forgedRow is a row no producer sent, received an hour ago.
func forgedRow(ws string) migrations.Row {
	ts := time.Now().Add(-time.Hour)
	return migrations.Row{WorkspaceID: ws, Timestamp: ts.Truncate(time.Second), TimestampNs: ts.UnixNano(), ID: "forged-" + fmt.Sprint(ts.UnixNano()),
		Event: "Source Deleted", Category: "Sources", ActorType: "user", ActorID: "usr_forged", Changes: "{}", Properties: "{}",
		ReceivedAt: ts.Truncate(time.Second), ReceivedAtNs: ts.UnixNano()}
}

// drill tampers with the trail and checks that verify names each change.
func (t *tamperEnv) drill(ctx context.Context) error {
	ws := tamperWorkspace
	if _, err := t.verify(0, "online", "-workspace", ws); err != nil {
		return err
	}
	if _, err := t.verify(0, "monitor", "-topic", "-state", t.state); err != nil {
		return err
	}
	page, err := store.New(t.chConn, t.db, 90, time.Now).List(ctx, store.Filter{WorkspaceID: ws}, nil, 3)
	if err != nil || len(page.Events) < 3 {
		return fmt.Errorf("pick 3 events of %s: %v", ws, err)
	}
	ids := []string{page.Events[0].ID, page.Events[1].ID, page.Events[2].ID}
	if err := t.weakAttacker(ctx, ws, ids[0], ids[1]); err != nil {
		return err
	}
	t.stop("sealer", syscall.SIGTERM) // the strong attacker rebuilds the log under it otherwise
	if err := t.strongAttacker(ctx, ws, ids[2]); err != nil {
		return err
	}
	return t.monitorAttacks(ctx, ws)
}

// weakAttacker deletes a row, changes a row's actor and inserts a forged
// row: verify names each.
func (t *tamperEnv) weakAttacker(ctx context.Context, ws, deleted, altered string) error {
	tamper := tampertest.Tamperer{Conn: t.chConn, Database: t.db}
	forged := forgedRow(ws)
	if err := errors.Join(tamper.DeleteRow(ctx, ws, deleted), tamper.SetActor(ctx, ws, altered, "usr_evil"), tamper.InsertForged(ctx, forged)); err != nil {
		return err
	}
	out, err := t.verify(1, "online", "-workspace", ws)
	if err != nil {
		return err
	}
	return expect(out, "row "+deleted+" (leaf", "): missing", "row "+altered+" (leaf", "): altered",
		"row "+forged.ID+" (timestamp", "present without a leaf")
}

// strongAttacker rewrites a row and the log beside it so that ClickHouse
// is self-consistent: verify against the checkpoint on the topic, and
// against the monitor's state, still reports it.
func (t *tamperEnv) strongAttacker(ctx context.Context, ws, id string) error {
	tamper := tampertest.Tamperer{Conn: t.chConn, Database: t.db}
	if err := tamper.RewriteConsistently(ctx, ws, id, "usr_evil"); err != nil {
		return err
	}
	for _, args := range [][]string{{"-trusted", "topic"}, {"-trusted", "state", "-state", t.state}} {
		out, err := t.verify(1, append([]string{"online", "-workspace", ws}, args...)...)
		if err != nil {
			return err
		}
		if err := expect(out, "does not match checkpoint"); err != nil {
			return err
		}
	}
	return nil
}

// monitorAttacks publishes a checkpoint signed by another key, a smaller
// one and a fork: the monitor refuses the first and reports the others.
func (t *tamperEnv) monitorAttacks(ctx context.Context, ws string) error {
	otherKey, _, err := note.GenerateKey(rand.Reader, tamperOrigin)
	if err != nil {
		return err
	}
	other, err := note.NewSigner(otherKey)
	if err != nil {
		return err
	}
	root := make([]byte, 32)
	state, err := verify.LoadState(t.state)
	if err != nil {
		return err
	}
	seen := state.Workspaces[ws].Size
	if seen < 2 {
		return fmt.Errorf("the monitor saw no checkpoint of %s", ws)
	}
	for _, c := range []struct {
		signer note.Signer
		size   int64
		want   string
	}{{other, seen, "unknown key"}, {t.signer, seen - 1, "rollback"}, {t.signer, seen, "fork"}} {
		msg, err := signed(c.signer, ws, c.size, root)
		if err != nil {
			return err
		}
		if err := t.publish(ctx, ws, msg); err != nil {
			return err
		}
		out, err := t.verify(1, "monitor", "-topic", "-state", t.state)
		if err != nil {
			return err
		}
		if err := expect(out, c.want); err != nil {
			return err
		}
	}
	return nil
}
