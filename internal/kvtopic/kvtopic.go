// Package kvtopic keeps a key-value table in a compacted Kafka topic.
//
// Every process that opens the table reads the topic from the beginning, is
// ready once it reached the end offsets it saw at start, and then tails the
// topic, so a value put by any process reaches every other within the fetch
// wait (about a second). The latest record of a key wins; an empty value
// deletes the key. Used for per-workspace settings that must survive
// restarts without another database.
package kvtopic

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/internal/backoff"
	"github.com/audittrail/audittrail/internal/kafkaconn"
)

// TopicConfigs are the topic settings a table's topic is created with.
func TopicConfigs() map[string]*string {
	compact := "compact"
	lag := "60000"
	return map[string]*string{"cleanup.policy": &compact, "min.compaction.lag.ms": &lag}
}

// Ensure creates the table's topic (one partition, compacted) when missing.
func Ensure(ctx context.Context, brokerOpts []kgo.Opt, topic string) error {
	cl, err := kgo.NewClient(brokerOpts...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	return kafkaconn.EnsureTopics(ctx, cl, 1, TopicConfigs(), topic)
}

// Table is the local copy of a compacted topic. It is safe for concurrent
// use. Create it with New, start it with Run.
type Table struct {
	cl       *kgo.Client
	topic    string
	onChange func(key string, value []byte)

	mu    sync.RWMutex
	data  map[string][]byte
	ready chan struct{}
}

// New returns a table over topic. onChange, when not nil, is called (from
// Run's goroutine, or from Put's caller) with every key whose value changed;
// value is nil for a deleted key.
func New(brokerOpts []kgo.Opt, topic string, onChange func(key string, value []byte)) (*Table, error) {
	opts := append([]kgo.Opt{}, brokerOpts...)
	opts = append(opts,
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(500*time.Millisecond),
		kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(0),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	if onChange == nil {
		onChange = func(string, []byte) {}
	}
	return &Table{cl: cl, topic: topic, onChange: onChange, data: map[string][]byte{}, ready: make(chan struct{})}, nil
}

// Run reads the topic until ctx ends, then closes the client. It returns
// an error only when the end offsets cannot be listed at start.
func (t *Table) Run(ctx context.Context) error {
	defer t.cl.Close()
	ends, err := t.endOffsets(ctx)
	if err != nil {
		return err
	}
	caughtUp := func() bool { return len(ends) == 0 }
	if caughtUp() {
		close(t.ready)
	}
	for {
		fetches := t.cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		fetches.EachRecord(func(r *kgo.Record) {
			t.apply(string(r.Key), r.Value)
			if end, ok := ends[r.Partition]; ok && r.Offset+1 >= end {
				delete(ends, r.Partition)
				if caughtUp() {
					close(t.ready)
				}
			}
		})
	}
}

func (t *Table) endOffsets(ctx context.Context) (map[int32]int64, error) {
	var ends map[int32]int64
	err := backoff.Policy{Min: time.Second, Max: time.Second}.Retry(ctx, func() error {
		res, err := kadm.NewClient(t.cl).ListEndOffsets(ctx, t.topic)
		if err == nil {
			err = res.Error()
		}
		if err != nil {
			return err
		}
		ends = map[int32]int64{}
		res.Each(func(o kadm.ListedOffset) {
			if o.Offset > 0 {
				ends[o.Partition] = o.Offset
			}
		})
		return nil
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("list end offsets of %s: %w", t.topic, err)
	}
	return ends, nil
}

func (t *Table) apply(key string, value []byte) {
	t.mu.Lock()
	if len(value) == 0 {
		if _, ok := t.data[key]; !ok {
			t.mu.Unlock()
			return
		}
		delete(t.data, key)
		value = nil
	} else {
		if old, ok := t.data[key]; ok && bytes.Equal(old, value) {
			t.mu.Unlock()
			return
		}
		t.data[key] = value
	}
	t.mu.Unlock()
	t.onChange(key, value)
}

// Ready is closed once the table holds everything the topic held when Run
// started.
func (t *Table) Ready() <-chan struct{} { return t.ready }

// WaitReady waits for Ready or ctx.
func (t *Table) WaitReady(ctx context.Context) error {
	select {
	case <-t.ready:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("settings table %s not loaded: %w", t.topic, ctx.Err())
	}
}

// Get returns the value of key. The slice must not be modified.
func (t *Table) Get(key string) ([]byte, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	v, ok := t.data[key]
	return v, ok
}

// ErrNotReady is returned by Put before the table has loaded.
var ErrNotReady = errors.New("settings not loaded yet")

// Put writes key=value to the topic, returns once the broker acknowledged
// it, and applies it locally (reads through Get see it at once).
func (t *Table) Put(ctx context.Context, key string, value []byte) error {
	select {
	case <-t.ready:
	default:
		return ErrNotReady
	}
	r := &kgo.Record{Topic: t.topic, Key: []byte(key), Value: value}
	if err := t.cl.ProduceSync(ctx, r).FirstErr(); err != nil {
		return fmt.Errorf("write %s to %s: %w", key, t.topic, err)
	}
	t.apply(key, value)
	return nil
}

// Ping checks that a broker answers.
func (t *Table) Ping(ctx context.Context) error { return t.cl.Ping(ctx) }
