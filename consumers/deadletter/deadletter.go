// Package deadletter is the one way to handle dead letters: it records
// them (Parker builds the dlq_* headers and publishes with retries), reads
// them back by offset (Read, without joining a consumer group) and replays
// them (Replay republishes the writer's letters; Requeue appends a letter
// again with a new reason when a replay fails; Group remembers how far a
// replay got, without joining the group).
//
// A dead letter keeps the original key, value and headers and adds the
// reason and the source topic, partition and offset (see package topics).
// The writer's letters are replayed by publishing the original record
// again to the events topic, where the writer treats it as new input: a
// record that is still poison is dead-lettered again, and a record that was
// already stored is collapsed with its stored copy, so replaying is always
// safe. The forwarder's letters are replayed by package forward, through
// the workspaces' current settings.
package deadletter

import (
	"strconv"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/schemas/topics"
)

const (
	// HeaderReplayedFrom names the dead letter a replayed record came from
	// ("topic/partition/offset").
	HeaderReplayedFrom = "dlq_replayed_from"
	// HeaderReplays counts how many times a requeued letter was replayed.
	HeaderReplays = "dlq_replays"
	// MaxReason is the longest reason header, in bytes, before "...".
	MaxReason = 1024
)

// Letter is one dead-lettered record.
type Letter struct {
	Partition int32  // in the dead-letter topic
	Offset    int64  // in the dead-letter topic
	Reason    string // the dlq_reason header
	// SourceTopic, SourcePartition and SourceOffset locate the original.
	SourceTopic     string
	SourcePartition int32
	SourceOffset    int64
	Key, Value      []byte
	Headers         []kgo.RecordHeader // the other headers: the original ones and the forwarder's
	Record          *kgo.Record        // the dead letter as read
}

// FromRecord reads a dead-letter record.
func FromRecord(r *kgo.Record) Letter {
	l := Letter{Partition: r.Partition, Offset: r.Offset, Key: r.Key, Value: r.Value, Record: r}
	for _, h := range r.Headers {
		v := string(h.Value)
		switch h.Key {
		case topics.HeaderDLQReason:
			l.Reason = v
		case topics.HeaderDLQTopic:
			l.SourceTopic = v
		case topics.HeaderDLQPartition:
			p, _ := strconv.ParseInt(v, 10, 32)
			l.SourcePartition = int32(p)
		case topics.HeaderDLQOffset:
			l.SourceOffset, _ = strconv.ParseInt(v, 10, 64)
		default:
			l.Headers = append(l.Headers, h)
		}
	}
	return l
}

// Header returns the value of the letter's header key among Headers, or "".
func (l Letter) Header(key string) string {
	for _, h := range l.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// reason caps a reason header at MaxReason bytes.
func reason(s string) []byte {
	if len(s) <= MaxReason {
		return []byte(s)
	}
	return []byte(s[:MaxReason] + "...")
}
