package main

// ClickHouse's own Kafka table engine as a baseline, made fair: it reads
// records produced before it starts, from the earliest offset, is timed as
// the writer is, and runs with the best settings of a stated grid.
//
// ClickHouse 18.16 knows these kafka_* table settings: kafka_broker_list,
// kafka_topic_list, kafka_group_name, kafka_format, kafka_row_delimiter,
// kafka_schema, kafka_num_consumers and kafka_max_block_size. It sets no
// auto.offset.reset (librdkafka's default, the latest offset, applies to a
// group without committed offsets) and reads librdkafka options only from
// the server's configuration file, so the bench commits offset 0 for every
// partition of the engine's new group before creating the table. Its flush
// interval is the server-wide stream_flush_interval_ms of the default
// profile, read at server start: not a table setting in 18.16, so not part
// of the grid (the bench records its value). Nor is min_insert_block_size_rows,
// up to which the engine's insert squashes blocks, also server-wide:
// changing either needs a server restart.

import (
	"context"
	"fmt"
	"runtime"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/audittrail/audittrail/schemas/migrations"
)

// engineSettings is one point of the Kafka engine's tuning grid.
type engineSettings struct {
	Consumers    int `json:"kafka_num_consumers"`
	MaxBlockSize int `json:"kafka_max_block_size"`
}

func (s engineSettings) String() string {
	return fmt.Sprintf("kafka_num_consumers = %d, kafka_max_block_size = %d", s.Consumers, s.MaxBlockSize)
}

// EngineTrial is the rate of one grid point's tuning run.
type EngineTrial struct {
	engineSettings
	Rate float64 `json:"rate"`
}

// engineGrid is what a careful user would try: one consumer per core up to
// the partitions, and blocks of the server's max_block_size (65,536, what
// 0 means) up to beyond the whole quick run.
func engineGrid(quick bool, partitions int) []engineSettings {
	blocks := []int{65536, 262144, 1048576}
	if quick {
		blocks = []int{65536, 1048576}
	}
	var g []engineSettings
	for c := 1; c <= min(runtime.NumCPU(), partitions); c++ {
		for _, b := range blocks {
			g = append(g, engineSettings{Consumers: c, MaxBlockSize: b})
		}
	}
	return g
}

// engineTarget is the table the engine's materialized view fills,
// identical to the writer's.
const engineTarget = "engine_target"

// createEngineTarget creates engineTarget.
func (e *env) createEngineTarget(ctx context.Context) error {
	return e.Conn.Exec(ctx, fmt.Sprintf("CREATE TABLE %s.%s AS %s.%s", e.DB, engineTarget, e.DB, migrations.Table))
}

// engineIngest has the Kafka engine, in a new group starting at offset 0,
// store the n flat rows already on topic into engineTarget through a
// materialized view, timed by untilStored as the writer is (the group's
// assignment read from the broker).
func (e *env) engineIngest(ctx context.Context, topic string, partitions, n int, s engineSettings, run string) (float64, error) {
	group := fmt.Sprintf("bench-engine-%s-%s", e.sfx, run)
	var offs kadm.Offsets
	for p := range partitions {
		offs.AddOffset(topic, int32(p), 0, -1)
	}
	resp, err := e.Admin.CommitOffsets(ctx, group, offs)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		return 0, fmt.Errorf("commit offset 0 for the engine's group: %w", err)
	}
	cols := strings.Join(migrations.InsertColumns, ", ")
	stmts := []string{
		fmt.Sprintf(`CREATE TABLE %s.engine_queue (
    workspace_id String, timestamp DateTime('UTC'), timestamp_ns Int64, id String, event String, category String,
    actor_type String, actor_id String, actor_name String, actor_email String,
    resource_type String, resource_id String, resource_name String, changes String,
    context_ip String, context_user_agent String, context_request_id String, properties String,
    received_at DateTime('UTC'), received_at_ns Int64, sender_credential_id String, sender_producer String
) ENGINE = Kafka SETTINGS kafka_broker_list = '%s', kafka_topic_list = '%s', kafka_group_name = '%s',
  kafka_format = 'JSONEachRow', kafka_num_consumers = %d, kafka_max_block_size = %d`,
			e.DB, strings.Join(e.Kafka.Brokers, ","), topic, group, s.Consumers, s.MaxBlockSize),
		fmt.Sprintf("CREATE MATERIALIZED VIEW %s.engine_mv TO %s.%s AS SELECT %s, now() AS inserted_at FROM %s.engine_queue",
			e.DB, e.DB, engineTarget, cols, e.DB),
	}
	defer func() {
		_ = e.Conn.Exec(context.Background(), fmt.Sprintf("DROP TABLE IF EXISTS %s.engine_mv", e.DB))
		_ = e.Conn.Exec(context.Background(), fmt.Sprintf("DROP TABLE IF EXISTS %s.engine_queue", e.DB))
	}()
	for _, q := range stmts {
		if err := e.Conn.Exec(ctx, q); err != nil {
			return 0, fmt.Errorf("kafka engine setup: %w", err)
		}
	}
	assigned := func() bool {
		gs, err := e.Admin.DescribeGroups(ctx, group)
		if err != nil {
			return false
		}
		g := gs[group]
		return len(g.AssignedPartitions()) > 0
	}
	return untilStored(n, storedIn(ctx, e, engineTarget), assigned)
}

// tuneEngine runs every grid point once, each from an emptied table and
// settled merges, and returns the trials and the fastest settings.
func (e *env) tuneEngine(ctx context.Context, o options, topic string) ([]EngineTrial, engineSettings, error) {
	var trials []EngineTrial
	var best EngineTrial
	for i, s := range engineGrid(o.quick, partitions) {
		rate, _, _, err := e.measureOnce(ctx, side{what: "Kafka engine, " + s.String(), rows: o.rows, tables: []string{engineTarget},
			measure: func(int) (float64, error) {
				return e.engineIngest(ctx, topic, partitions, o.rows, s, fmt.Sprintf("grid%d", i))
			}}, 0)
		if err != nil {
			return nil, s, fmt.Errorf("kafka engine, %s: %w", s, err)
		}
		logf("Kafka engine tuning, %s: %.0f rows/s", s, rate)
		t := EngineTrial{engineSettings: s, Rate: rate}
		trials = append(trials, t)
		if t.Rate > best.Rate {
			best = t
		}
	}
	return trials, best.engineSettings, nil
}
