package main

// The local three-node Kafka cluster (scripts/lib/cluster.sh) and what the
// drill reads of it: topics' leaders and ISRs, the quorum leader, groups.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// brokers is the bootstrap list of the local cluster (scripts/lib/cluster.sh).
var brokers = []string{"127.0.0.1:19092", "127.0.0.1:19094", "127.0.0.1:19096"}

// cluster drives scripts/lib/cluster.sh.
type cluster struct{ root string }

func (c cluster) sh(fn string, args ...string) error {
	script := ". scripts/lib/cluster.sh && " + fn + ` "$@"`
	cmd := exec.Command("bash", append([]string{"-c", script, "cluster"}, args...)...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = c.root, os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w", fn, strings.Join(args, " "), err)
	}
	return nil
}

// install fetches the broker jars (and Java) when missing.
func (c cluster) install() error { return c.sh("cluster_install") }

// start starts the given nodes (all without arguments) and waits for them.
func (c cluster) start(nodes ...string) error { return c.sh("cluster_start", nodes...) }

// stop stops the given nodes (all without arguments).
func (c cluster) stop(nodes ...string) error { return c.sh("cluster_stop", nodes...) }

// kill sends SIGKILL to one node.
func (c cluster) kill(node int32) error { return c.sh("cluster_kill", fmt.Sprint(node)) }

// running reports which of the three nodes run now.
func (c cluster) running() []string {
	var out []string
	for _, n := range []string{"1", "2", "3"} {
		cmd := exec.Command("bash", "-c", ". scripts/lib/cluster.sh && cluster_running "+n)
		cmd.Dir = c.root
		if cmd.Run() == nil {
			out = append(out, n)
		}
	}
	return out
}

// stopStarted stops the nodes that were not running before (as returned by
// running), and leaves the others running.
func (c cluster) stopStarted(before []string) {
	var ours []string
	for _, n := range []string{"1", "2", "3"} {
		if !slices.Contains(before, n) {
			ours = append(ours, n)
		}
	}
	if len(ours) == 0 {
		logf("leaving the cluster running (it was running before)")
		return
	}
	if err := c.stop(ours...); err != nil {
		logf("stop cluster: %v", err)
	}
}

// createTopic creates topic with the given partitions and replication
// factor 3, and checks that every partition has three replicas.
func createTopic(ctx context.Context, adm *kadm.Client, topic string, partitions int32, configs map[string]*string) error {
	resp, err := adm.CreateTopic(ctx, partitions, 3, configs, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	md, err := adm.Metadata(ctx, topic)
	if err != nil {
		return fmt.Errorf("describe topic %s: %w", topic, err)
	}
	for _, p := range md.Topics[topic].Partitions {
		if len(p.Replicas) != 3 {
			return fmt.Errorf("topic %s partition %d has %d replicas, want 3", topic, p.Partition, len(p.Replicas))
		}
	}
	return nil
}

// partitionState summarises a topic's partitions: how many have a leader
// other than avoid, and how many have their full ISR.
type partitionState struct {
	Partitions, Led, FullISR int
	LedBy                    map[int32]int // leader -> partitions
}

func topicState(ctx context.Context, adm *kadm.Client, topic string, avoid int32) (partitionState, error) {
	md, err := adm.Metadata(ctx, topic)
	if err != nil {
		return partitionState{}, err
	}
	t, ok := md.Topics[topic]
	if !ok || t.Err != nil {
		return partitionState{}, fmt.Errorf("topic %s: %v", topic, t.Err)
	}
	s := partitionState{LedBy: map[int32]int{}}
	for _, p := range t.Partitions {
		s.Partitions++
		if p.Leader >= 0 && p.Leader != avoid && p.Err == nil {
			s.Led++
		}
		s.LedBy[p.Leader]++
		if len(p.ISR) == len(p.Replicas) {
			s.FullISR++
		}
	}
	return s, nil
}

// quorumLeader asks the brokers which node leads the KRaft metadata quorum.
func quorumLeader(ctx context.Context, cl *kgo.Client) (int32, error) {
	req := kmsg.NewPtrDescribeQuorumRequest()
	t := kmsg.NewDescribeQuorumRequestTopic()
	t.Topic = "__cluster_metadata"
	p := kmsg.NewDescribeQuorumRequestTopicPartition()
	t.Partitions = append(t.Partitions, p)
	req.Topics = append(req.Topics, t)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return -1, err
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return -1, err
	}
	if len(resp.Topics) == 0 || len(resp.Topics[0].Partitions) == 0 {
		return -1, errors.New("describe quorum: empty answer")
	}
	return resp.Topics[0].Partitions[0].LeaderID, nil
}

// groupView is who owns which partitions in a consumer group.
type groupView struct {
	Coordinator int32
	State       string
	Members     map[string][]int32 // instance id (or client id + member id) -> partitions
}

func (g groupView) String() string {
	names := make([]string, 0, len(g.Members))
	for n := range g.Members {
		names = append(names, n)
	}
	slices.Sort(names)
	parts := make([]string, 0, len(names))
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("%s=%v", n, g.Members[n]))
	}
	return fmt.Sprintf("%s, coordinator node %d: %s", g.State, g.Coordinator, strings.Join(parts, " "))
}

func describeGroup(ctx context.Context, adm *kadm.Client, group string) (groupView, error) {
	ds, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return groupView{}, err
	}
	d, ok := ds[group]
	if !ok {
		return groupView{}, fmt.Errorf("group %s not described", group)
	}
	if d.Err != nil {
		return groupView{}, d.Err
	}
	v := groupView{Coordinator: d.Coordinator.NodeID, State: d.State, Members: map[string][]int32{}}
	for i, m := range d.Members {
		name := fmt.Sprintf("%s#%d", m.ClientID, i)
		if m.InstanceID != nil {
			name = *m.InstanceID
		}
		var ps []int32
		if c, ok := m.Assigned.AsConsumer(); ok {
			for _, t := range c.Topics {
				ps = append(ps, t.Partitions...)
			}
		}
		slices.Sort(ps)
		v.Members[name] = ps
	}
	return v, nil
}
