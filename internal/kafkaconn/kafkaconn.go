// Package kafkaconn turns the AUDITTRAIL_KAFKA_* configuration into franz-go
// client options.
//
// It also creates the product's topics. Every component builds its client
// from Options, so broker settings live in one place.
package kafkaconn

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/internal/config"
)

// Config locates the brokers and the events topic.
type Config struct {
	Brokers []string
	// Topic is the audit events topic.
	Topic string
	// Partitions is the partition count used when the topic is created.
	Partitions int
	// ClientID names this process to the brokers.
	ClientID string
}

// FromEnv reads config.KafkaBrokers, config.KafkaTopic and
// config.KafkaPartitions; defaultTopic and defaultPartitions replace their
// declared defaults (a benchmark's own topic).
func FromEnv(e *config.Env, defaultTopic string, defaultPartitions int) Config {
	return Config{
		Brokers:    config.KafkaBrokers.Get(e),
		Topic:      config.KafkaTopic.GetOr(e, defaultTopic),
		Partitions: config.KafkaPartitions.GetOr(e, defaultPartitions),
		ClientID:   "audittrail",
	}
}

// Validate reports configuration that cannot work.
func (c Config) Validate() error {
	errs := []error{config.KafkaBrokers.Check(c.Brokers), config.KafkaPartitions.Check(c.Partitions)}
	if c.Topic == "" || strings.ContainsAny(c.Topic, " /\\") {
		errs = append(errs, config.KafkaTopic.Invalid(c.Topic))
	}
	return errors.Join(errs...)
}

// Options returns the client options every component starts from.
func (c Config) Options() []kgo.Opt {
	id := c.ClientID
	if id == "" {
		id = "audittrail"
	}
	return []kgo.Opt{
		kgo.SeedBrokers(c.Brokers...),
		kgo.ClientID(id),
	}
}

// EnsureTopics creates the topics that do not exist yet, with the given
// partition count and replication factor 1 when there is a single broker
// (the broker's default otherwise). Topics that exist are left as they are.
func EnsureTopics(ctx context.Context, cl *kgo.Client, partitions int, configs map[string]*string, topics ...string) error {
	adm := kadm.NewClient(cl)
	brokers, err := adm.ListBrokers(ctx)
	if err != nil {
		return fmt.Errorf("list brokers: %w", err)
	}
	rf := int16(-1)
	if len(brokers) < 3 {
		rf = int16(len(brokers))
	}
	resp, err := adm.CreateTopics(ctx, int32(partitions), rf, configs, topics...)
	if err != nil {
		return fmt.Errorf("create topics %v: %w", topics, err)
	}
	for _, r := range resp.Sorted() {
		if r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("create topic %s: %w", r.Topic, r.Err)
		}
	}
	return nil
}
