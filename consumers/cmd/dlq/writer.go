package main

// dlq writer: the writer's dead letters, listed and republished to the
// events topic. Brokers and topics come from AUDITTRAIL_KAFKA_BROKERS,
// AUDITTRAIL_KAFKA_TOPIC (where replays go) and AUDITTRAIL_WRITER_DLQ_TOPIC,
// or the flags.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/consumers/deadletter"
	"github.com/audittrail/audittrail/internal/config"
	"github.com/audittrail/audittrail/internal/kafkaconn"
	"github.com/audittrail/audittrail/schemas/topics"
)

type position struct {
	partition int32
	offset    int64
}

func parseAt(s string) (map[position]bool, error) {
	out := map[position]bool{}
	for _, item := range strings.Split(s, ",") {
		p, o, ok := strings.Cut(strings.TrimSpace(item), ":")
		pi, err1 := strconv.ParseInt(p, 10, 32)
		oi, err2 := strconv.ParseInt(o, 10, 64)
		if !ok || err1 != nil || err2 != nil || pi < 0 || oi < 0 {
			return nil, fmt.Errorf("flag -at: want partition:offset[,partition:offset...], got %q", item)
		}
		out[position{int32(pi), oi}] = true
	}
	return out, nil
}

// writerOptions are the flags of dlq writer list and replay.
type writerOptions struct {
	cmd     string // list or replay
	brokers []string
	dlq, to string
	reason  string
	limit   int
	pick    map[position]bool // replay -at; nil: every letter
	dryRun  bool
}

// parseWriter reads the flags of dlq writer cmd over the configuration's
// defaults. A usage error names the flag; -h returns flag.ErrHelp.
func parseWriter(cmd string, args []string, summary io.Writer) (writerOptions, error) {
	env := config.FromOS()
	kc := kafkaconn.FromEnv(env, topics.Events, topics.DefaultPartitions)
	o := writerOptions{cmd: cmd, dlq: config.WriterDLQTopic.Get(env)}
	if err := env.Err(); err != nil {
		return o, err
	}
	fs := flag.NewFlagSet("dlq writer "+cmd, flag.ContinueOnError)
	fs.SetOutput(summary)
	brokers := fs.String("brokers", strings.Join(kc.Brokers, ","), "Kafka brokers")
	fs.StringVar(&o.dlq, "topic", o.dlq, "dead-letter topic")
	fs.StringVar(&o.to, "to", kc.Topic, "topic replays are published to")
	fs.StringVar(&o.reason, "reason", "", "only letters whose reason contains this text")
	fs.IntVar(&o.limit, "limit", 0, "list at most this many (0: all)")
	all := fs.Bool("all", false, "replay every letter (matching -reason)")
	at := fs.String("at", "", "replay these letters: partition:offset[,...] of the dead-letter topic")
	fs.BoolVar(&o.dryRun, "dry-run", false, "show what would be replayed")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	o.brokers = strings.Split(*brokers, ",")
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("unexpected argument %q (dlq writer %s -h lists the flags)", fs.Arg(0), cmd)
	case o.limit < 0:
		return o, errors.New("flag -limit must not be negative")
	case *brokers == "":
		return o, errors.New("flag -brokers is empty")
	case cmd != "replay":
		return o, nil
	case *all == (*at != ""):
		return o, errors.New("replay needs exactly one of -all or -at")
	case o.to == o.dlq:
		return o, errors.New("flag -to must differ from the dead-letter topic")
	}
	var err error
	if *at != "" {
		o.pick, err = parseAt(*at)
	}
	return o, err
}

// runWriter lists or replays (cmd) the writer's dead letters; it returns
// the exit code (2 for usage errors).
func runWriter(ctx context.Context, cmd string, args []string, out, summary io.Writer) (int, error) {
	o, err := parseWriter(cmd, args, summary)
	if errors.Is(err, flag.ErrHelp) {
		return 0, nil
	}
	if err != nil {
		return 2, err
	}
	opts := []kgo.Opt{kgo.SeedBrokers(o.brokers...), kgo.ClientID("audittrail-dlq-writer")}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()

	var letters []deadletter.Letter
	listed := 0
	err = deadletter.Read(ctx, opts, o.dlq, nil, func(l deadletter.Letter) bool {
		if o.reason != "" && !strings.Contains(l.Reason, o.reason) {
			return true
		}
		if o.pick != nil && !o.pick[position{l.Partition, l.Offset}] {
			return true
		}
		if cmd == "list" {
			fmt.Fprintf(out, "%d:%d\t%s\tfrom %s/%d/%d\tkey=%q\t%s\n", l.Partition, l.Offset, l.Reason,
				l.SourceTopic, l.SourcePartition, l.SourceOffset, l.Key, preview(l.Value))
			listed++
			return o.limit == 0 || listed < o.limit
		}
		letters = append(letters, l)
		return true
	})
	if err != nil {
		return 1, err
	}
	if cmd == "list" {
		return 0, nil
	}
	return replayWriter(ctx, opts, o, letters, out)
}

// replayWriter republishes letters to o.to (or, with o.dryRun, says it
// would).
func replayWriter(ctx context.Context, opts []kgo.Opt, o writerOptions, letters []deadletter.Letter, out io.Writer) (int, error) {
	if o.dryRun {
		for _, l := range letters {
			fmt.Fprintf(out, "would replay %d:%d (%s) to %s\n", l.Partition, l.Offset, l.Reason, o.to)
		}
		return 0, nil
	}
	if len(letters) == 0 {
		fmt.Fprintln(out, "nothing to replay")
		return 0, nil
	}
	cl, err := kgo.NewClient(append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))...)
	if err != nil {
		return 1, err
	}
	defer cl.Close()
	if err := deadletter.Replay(ctx, cl, o.to, o.dlq, letters); err != nil {
		return 1, err
	}
	fmt.Fprintf(out, "replayed %d letters to %s\n", len(letters), o.to)
	return 0, nil
}

func preview(v []byte) string {
	s := string(v)
	if !utf8.ValidString(s) {
		return fmt.Sprintf("(%d bytes, not UTF-8)", len(v))
	}
	if len(s) > 120 {
		s = s[:120] + "..."
	}
	return strings.ReplaceAll(s, "\n", " ")
}
