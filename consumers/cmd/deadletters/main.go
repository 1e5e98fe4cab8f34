// Package main is the deadletters command; it lists and replays the writer's dead letters.
//
//	deadletters list   [-reason substr] [-limit n]
//	deadletters replay (-all | -at partition:offset[,partition:offset...]) [-reason substr] [-dry-run]
//
// Brokers and topics come from AUDITTRAIL_KAFKA_BROKERS, AUDITTRAIL_KAFKA_TOPIC
// (where replays go) and AUDITTRAIL_WRITER_DLQ_TOPIC, or the flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/consumers/deadletter"
	"github.com/audittrail/audittrail/internal/config"
	"github.com/audittrail/audittrail/internal/kafkaconn"
	"github.com/audittrail/audittrail/schemas/topics"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code, err := run(ctx, os.Args[1:], os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "deadletters:", err)
	}
	os.Exit(code)
}

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

// run executes one subcommand; it returns the exit code (2 for usage errors).
func run(ctx context.Context, args []string, out io.Writer) (int, error) {
	if len(args) == 0 || (args[0] != "list" && args[0] != "replay") {
		return 2, errors.New("usage: deadletters list|replay [flags] (deadletters list -h for flags)")
	}
	env := config.FromOS()
	kc := kafkaconn.FromEnv(env, topics.Events, topics.DefaultPartitions)
	dlq := config.WriterDLQTopic.Get(env)
	if err := env.Err(); err != nil {
		return 2, err
	}
	fs := flag.NewFlagSet("deadletters "+args[0], flag.ContinueOnError)
	brokers := fs.String("brokers", strings.Join(kc.Brokers, ","), "Kafka brokers")
	fs.StringVar(&dlq, "topic", dlq, "dead-letter topic")
	to := fs.String("to", kc.Topic, "topic replays are published to")
	reason := fs.String("reason", "", "only letters whose reason contains this text")
	limit := fs.Int("limit", 0, "list at most this many (0: all)")
	all := fs.Bool("all", false, "replay every letter (matching -reason)")
	at := fs.String("at", "", "replay these letters: partition:offset[,...] of the dead-letter topic")
	dry := fs.Bool("dry-run", false, "show what would be replayed")
	if err := fs.Parse(args[1:]); err != nil {
		return 2, nil
	}
	if *limit < 0 {
		return 2, errors.New("flag -limit must not be negative")
	}
	if *brokers == "" {
		return 2, errors.New("flag -brokers is empty")
	}
	var pick map[position]bool
	if args[0] == "replay" {
		switch {
		case *all == (*at != ""):
			return 2, errors.New("replay needs exactly one of -all or -at")
		case *at != "":
			var err error
			if pick, err = parseAt(*at); err != nil {
				return 2, err
			}
		}
		if *to == dlq {
			return 2, errors.New("flag -to must differ from the dead-letter topic")
		}
	}
	opts := []kgo.Opt{kgo.SeedBrokers(strings.Split(*brokers, ",")...), kgo.ClientID("audittrail-deadletters")}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()

	var letters []deadletter.Letter
	listed := 0
	err := deadletter.Read(ctx, opts, dlq, func(l deadletter.Letter) bool {
		if *reason != "" && !strings.Contains(l.Reason, *reason) {
			return true
		}
		if pick != nil && !pick[position{l.Partition, l.Offset}] {
			return true
		}
		if args[0] == "list" {
			fmt.Fprintf(out, "%d:%d\t%s\tfrom %s/%d/%d\tkey=%q\t%s\n", l.Partition, l.Offset, l.Reason,
				l.SourceTopic, l.SourcePartition, l.SourceOffset, l.Key, preview(l.Value))
			listed++
			return *limit == 0 || listed < *limit
		}
		letters = append(letters, l)
		return true
	})
	if err != nil {
		return 1, err
	}
	if args[0] == "list" {
		return 0, nil
	}
	if *dry {
		for _, l := range letters {
			fmt.Fprintf(out, "would replay %d:%d (%s) to %s\n", l.Partition, l.Offset, l.Reason, *to)
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
	if err := deadletter.Replay(ctx, cl, *to, dlq, letters); err != nil {
		return 1, err
	}
	fmt.Fprintf(out, "replayed %d letters to %s\n", len(letters), *to)
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
