#!/usr/bin/env bash
# create-topics.sh BOOTSTRAP - creates the audittrail topics on the production
# cluster (replication factor 3, min.insync.replicas 2), or leaves them as
# they are when they exist. Needs kafka-topics.sh from the Kafka 4.1
# distribution (set KAFKA_BIN to its bin/ folder; the apache/kafka image has
# it in /opt/kafka/bin).
#
#   deploy/kafka/production/create-topics.sh kafka-1.audittrail.internal:9092
#
# Each `topic` line: name, partitions, then topic configs. The names are the
# defaults of schemas/topics (AUDITTRAIL_KAFKA_TOPIC, AUDITTRAIL_WRITER_DLQ_TOPIC,
# AUDITTRAIL_FORWARDER_DLQ_TOPIC, AUDITTRAIL_SETTINGS_TOPIC,
# AUDITTRAIL_CREDENTIALS_TOPIC); deploy/deploy_test.go
# checks them, and the partition count against the manifests'
# AUDITTRAIL_KAFKA_PARTITIONS.
set -euo pipefail

bootstrap=${1:?usage: create-topics.sh BOOTSTRAP (host:port of a broker)}
topics_cmd=${KAFKA_BIN:+$KAFKA_BIN/}kafka-topics.sh
replication_factor=3

topic() {
	local name=$1 partitions=$2 c
	shift 2
	local configs=()
	for c in "$@"; do configs+=(--config "$c"); done
	"$topics_cmd" --bootstrap-server "$bootstrap" --create --if-not-exists \
		--topic "$name" --partitions "$partitions" --replication-factor "$replication_factor" \
		"${configs[@]}"
}

# Every accepted audit event, keyed by workspace. The writer and the forwarder
# groups each run at most one busy instance per partition, so the count caps
# how far they scale out (24 leaves room to grow; adding partitions later
# moves workspaces to other partitions, which breaks per-workspace order for
# the events in flight at that moment). Kept 7 days: the longest writer or
# ClickHouse outage that loses nothing (events wait here until the writer
# catches up).
topic audit-events 24 \
	cleanup.policy=delete retention.ms=604800000 min.insync.replicas=2 \
	unclean.leader.election.enable=false

# Records the writer could not store (poison), with dlq_* headers. Kept 90
# days, the audit retention window: replaying a dead letter older than that
# would store nothing (the writer drops expired events).
topic audit-events-dlq 6 \
	cleanup.policy=delete retention.ms=7776000000 min.insync.replicas=2 \
	unclean.leader.election.enable=false

# Events a workspace's target rejected or never accepted; replayed with
# dlq forwarder replay. Kept 90 days like the writer's dead letters.
topic audit-forward-dlq 6 \
	cleanup.policy=delete retention.ms=7776000000 min.insync.replicas=2 \
	unclean.leader.election.enable=false

# Forwarding settings, one record per workspace and kind, read from the
# beginning by every API and forwarder instance: compacted so only the
# latest value of each key stays (internal/kvtopic creates it the same way:
# one partition, compact, 60 s minimum compaction lag).
topic audit-settings 1 \
	cleanup.policy=compact min.compaction.lag.ms=60000 min.insync.replicas=2 \
	unclean.leader.election.enable=false

# Producer credentials (scopes and secret hashes), one record per credential
# id, read from the beginning by every ingest gateway and written by the
# credentials command: compacted like the settings topic.
topic audit-credentials 1 \
	cleanup.policy=compact min.compaction.lag.ms=60000 min.insync.replicas=2 \
	unclean.leader.election.enable=false

# Signed checkpoints of the workspaces' integrity logs, one record per
# workspace (its latest), published by the sealer for outside witnesses
# (verify monitor -topic): compacted like the settings topic (the sealer
# creates it the same way through internal/kvtopic).
topic audit-checkpoints 1 \
	cleanup.policy=compact min.compaction.lag.ms=60000 min.insync.replicas=2 \
	unclean.leader.election.enable=false
