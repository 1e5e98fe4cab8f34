// Package main is the ingest command, which runs the HTTP ingest gateway.
//
// POST /v1/events publishes audit events to Kafka. Configuration comes from
// AUDITTRAIL_* variables (see docs/configuration.md).
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/internal/config"
	"github.com/audittrail/audittrail/internal/httpserver"
	"github.com/audittrail/audittrail/internal/kafkaconn"
	"github.com/audittrail/audittrail/internal/kvtopic"
	"github.com/audittrail/audittrail/internal/service"
	"github.com/audittrail/audittrail/producers/ingest"
	"github.com/audittrail/audittrail/schemas/topics"
)

func main() { service.Main("ingest", run) }

func run(ctx context.Context, log *slog.Logger, reg *prometheus.Registry) error {
	env := config.FromOS()
	kc := kafkaconn.FromEnv(env, topics.Events, topics.DefaultPartitions)
	cfg := ingest.FromEnv(env, kc.Topic)
	proxies, perr := httpserver.TrustedProxiesFromEnv(env)
	if err := errors.Join(env.Err(), perr); err != nil {
		return err
	}
	if err := config.CheckUnknown(); err != nil {
		return err
	}
	if err := kc.Validate(); err != nil {
		return err
	}

	kc.ClientID = "audittrail-ingest"
	cl, err := kgo.NewClient(append(kc.Options(), ingest.ProducerOptions()...)...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = kafkaconn.EnsureTopics(tctx, cl, kc.Partitions, nil, kc.Topic) // the writer creates its dead-letter topic
	cancel()
	if err != nil {
		return err
	}
	creds, err := openCredentials(ctx, kc, cfg.CredentialsTopic, log)
	if err != nil {
		return err
	}
	defer creds.Close()
	cfg.Credentials = creds.Store

	gw, err := ingest.New(cfg, ingest.NewKafkaPublisher(cl), log, reg, time.Now)
	if err != nil {
		return err
	}
	e := httpserver.New(httpserver.Options{Name: "ingest", Log: log, Reg: reg, Ready: func(ctx context.Context) error { return errors.Join(creds.Ready(ctx), cl.Ping(ctx)) }, TrustedProxies: proxies})
	gw.Register(e)
	log.Info("ingest gateway listening", "addr", cfg.Addr, "topic", kc.Topic)
	return httpserver.Serve(ctx, e, cfg.Addr, httpserver.Listening(log, "http"))
}

// openCredentials creates the credentials topic when missing and starts
// reading it; the gateway is not ready until it is loaded.
func openCredentials(ctx context.Context, kc kafkaconn.Config, topic string, log *slog.Logger) (*ingest.CredentialTable, error) {
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := kvtopic.Ensure(tctx, kc.Options(), topic); err != nil {
		return nil, fmt.Errorf("credentials topic %s: %w", topic, err)
	}
	return ingest.OpenCredentials(kc.Options(), topic, log)
}
