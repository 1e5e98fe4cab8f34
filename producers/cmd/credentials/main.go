// Package main is the credentials command, which manages producer
// credentials.
//
// Operators with Kafka access create, list, rotate and revoke producer
// credentials on the credentials topic (AUDITTRAIL_CREDENTIALS_TOPIC). Every
// change is also an audit event in the platform trail. Secrets are printed
// once, by create and rotate.
//
//	credentials create -operator alice -name warehouse -workspaces 'ws_eu_*' -categories Warehouses
//	credentials list
//	credentials rotate -operator alice -id pc_... -grace 24h
//	credentials revoke -operator alice -id pc_...
//
// Usage errors exit 2, other failures 1.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/segmentio/encoding/json"

	"github.com/audittrail/audittrail/internal/config"
	"github.com/audittrail/audittrail/internal/kafkaconn"
	"github.com/audittrail/audittrail/internal/kvtopic"
	"github.com/audittrail/audittrail/producers/credentials"
	"github.com/audittrail/audittrail/producers/emitter"
	"github.com/audittrail/audittrail/schemas/credential"
	"github.com/audittrail/audittrail/schemas/topics"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], config.FromOS(), os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// usageError is a command line that cannot run; it exits 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

const usage = `usage: credentials <create|list|rotate|revoke> [flags]
  create -operator WHO -name NAME -workspaces LIST -categories LIST
  list
  rotate -operator WHO -id ID [-grace 24h]
  revoke -operator WHO -id ID
LIST is comma-separated exact values, prefixes ending in * (ws_eu_*), or * for all.`

// options is one parsed command line.
type options struct {
	command, operator, name, id string
	scopes                      credential.Scopes
	grace                       time.Duration
	kafka                       kafkaconn.Config
	credentialsTopic            string
}

// parse reads the command and its flags; defaults come from env.
func parse(args []string, env *config.Env) (options, error) {
	o := options{kafka: kafkaconn.FromEnv(env, topics.Events, topics.DefaultPartitions), credentialsTopic: config.CredentialsTopic.Get(env)}
	if err := env.Err(); err != nil {
		return o, usagef("%v", err)
	}
	if len(args) == 0 {
		return o, usagef("no command")
	}
	o.command = args[0]
	fs := flag.NewFlagSet(o.command, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	brokers := fs.String("brokers", strings.Join(o.kafka.Brokers, ","), "Kafka bootstrap brokers ("+config.KafkaBrokers.Name+")")
	fs.StringVar(&o.credentialsTopic, "topic", o.credentialsTopic, "credentials topic ("+config.CredentialsTopic.Name+")")
	fs.StringVar(&o.kafka.Topic, "events-topic", o.kafka.Topic, "events topic the platform trail is published to ("+config.KafkaTopic.Name+")")
	var workspaces, categories string
	switch o.command {
	case "create":
		fs.StringVar(&o.operator, "operator", "", "who makes the change (required)")
		fs.StringVar(&o.name, "name", "", "what the producer is, e.g. warehouse-service (required)")
		fs.StringVar(&workspaces, "workspaces", "", "workspaces it may write (required)")
		fs.StringVar(&categories, "categories", "", "event categories it may write (required)")
	case "rotate":
		fs.StringVar(&o.operator, "operator", "", "who makes the change (required)")
		fs.StringVar(&o.id, "id", "", "credential id (required)")
		fs.DurationVar(&o.grace, "grace", 24*time.Hour, "how long the current secret stays valid")
	case "revoke":
		fs.StringVar(&o.operator, "operator", "", "who makes the change (required)")
		fs.StringVar(&o.id, "id", "", "credential id (required)")
	case "list":
	default:
		return o, usagef("unknown command %q", o.command)
	}
	if err := fs.Parse(args[1:]); err != nil {
		return o, usagef("%s: %v", o.command, err)
	}
	if fs.NArg() > 0 {
		return o, usagef("%s: unexpected argument %q", o.command, fs.Arg(0))
	}
	o.kafka.Brokers = credential.ParseList(*brokers)
	required := map[string]string{"-operator": o.operator, "-name": o.name, "-id": o.id, "-workspaces": workspaces, "-categories": categories}
	var missing []string
	fs.VisitAll(func(f *flag.Flag) {
		if v, ok := required["-"+f.Name]; ok && strings.TrimSpace(v) == "" {
			missing = append(missing, "-"+f.Name)
		}
	})
	if len(missing) > 0 {
		return o, usagef("%s: %s required", o.command, strings.Join(missing, ", "))
	}
	if o.grace < 0 {
		return o, usagef("rotate: -grace %s: want 0 or more", o.grace)
	}
	if o.command == "create" {
		o.scopes = credential.Scopes{Workspaces: credential.ParseList(workspaces), Categories: credential.ParseList(categories)}
		if err := o.scopes.Validate(); err != nil {
			return o, usagef("create: -workspaces/-categories: %v", err)
		}
	}
	if len(o.kafka.Brokers) == 0 || o.credentialsTopic == "" || o.kafka.Topic == "" {
		return o, usagef("%s: -brokers, -topic and -events-topic must not be empty", o.command)
	}
	return o, nil
}

// run executes one command line and returns the exit code.
func run(ctx context.Context, args []string, env *config.Env, stdout, stderr io.Writer) int {
	o, err := parse(args, env)
	if err != nil {
		fmt.Fprintf(stderr, "credentials: %v\n%s\n", err, usage)
		return 2
	}
	if err := execute(ctx, o, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "credentials %s: %v\n", o.command, err)
		return 1
	}
	return 0
}

// execute loads the credentials topic and applies the command.
func execute(ctx context.Context, o options, stdout, stderr io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	o.kafka.ClientID = "audittrail-credentials"
	opts := o.kafka.Options()
	if err := kvtopic.Ensure(ctx, opts, o.credentialsTopic); err != nil {
		return fmt.Errorf("credentials topic %s: %w", o.credentialsTopic, err)
	}
	em, err := emitter.New(emitter.Config{Topic: o.kafka.Topic, Producer: "credentials"}, opts, time.Now)
	if err != nil {
		return err
	}
	defer em.Close()
	var admin *credentials.Admin
	table, err := kvtopic.New(opts, o.credentialsTopic, func(k string, v []byte) { admin.Apply(k, v) })
	if err != nil {
		return err
	}
	admin = credentials.New(table, em, time.Now)
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- table.Run(rctx) }()
	defer func() { stop(); <-done }()
	if err := table.WaitReady(ctx); err != nil {
		return err
	}

	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	switch o.command {
	case "list":
		return enc.Encode(admin.List())
	case "revoke":
		r, err := admin.Revoke(ctx, o.operator, o.id)
		if err != nil {
			return err
		}
		return enc.Encode(r)
	}
	var r credential.Record
	var token string
	if o.command == "create" {
		r, token, err = admin.Create(ctx, o.operator, o.name, o.scopes)
	} else {
		r, token, err = admin.Rotate(ctx, o.operator, o.id, o.grace)
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(stderr, "The token is shown only now: give it to the producer (Authorization: Bearer <token>).")
	return enc.Encode(struct {
		credential.Record
		Token string `json:"token"`
	}{r, token})
}
