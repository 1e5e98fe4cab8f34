// Package deploy holds how audittrail is run, and the tests of those files.
//
// The files are the local single-node Kafka and ClickHouse configuration the
// scripts use, the production Kafka profile, the ClickHouse cluster sample,
// Kubernetes manifests and a compose file (see README.md here). It has no
// code of its own: its tests check that those files parse and agree with the
// binaries (configuration variables, probe ports and paths, topic names and
// settings), and, as an integration test, that the cluster variant of the
// schema works on a local two-shard ClickHouse cluster (scripts/ch-cluster).
package deploy
