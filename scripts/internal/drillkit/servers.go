package drillkit

// The Kafka brokers and the ClickHouse server the drills and benchmarks
// use: those the services' configuration names.

import (
	"errors"
	"net"

	"github.com/audittrail/audittrail/internal/chconn"
	"github.com/audittrail/audittrail/internal/config"
	"github.com/audittrail/audittrail/internal/kafkaconn"
	"github.com/audittrail/audittrail/schemas/topics"
)

// Servers are the Kafka brokers and the ClickHouse server, configured as
// the services configure them.
type Servers struct {
	Kafka      kafkaconn.Config
	ClickHouse chconn.Config
}

// ServersFromEnv reads the servers' configuration from the environment
// with the services' defaults (loopback).
func ServersFromEnv() (Servers, error) {
	env := config.FromOS()
	s := Servers{Kafka: kafkaconn.FromEnv(env, topics.Events, topics.DefaultPartitions), ClickHouse: chconn.FromEnv(env)}
	return s, errors.Join(env.Err(), s.Kafka.Validate())
}

// ClientArgs are clickhouse-client's flags for the ClickHouse server.
func (s Servers) ClientArgs() []string {
	host, port, _ := net.SplitHostPort(s.ClickHouse.Addr)
	args := []string{"--host", host, "--port", port, "--user", s.ClickHouse.Username}
	if s.ClickHouse.Password != "" {
		args = append(args, "--password", s.ClickHouse.Password)
	}
	return args
}
