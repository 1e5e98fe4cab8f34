package chconn_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/chconn"
	"github.com/audittrail/audittrail/internal/config"
	"github.com/audittrail/audittrail/internal/proctest"
)

func TestCompressionIsValidated(t *testing.T) {
	for _, v := range []string{"lz4", "zstd", "none"} {
		c := chconn.FromEnv(config.FromMap(map[string]string{"AUDITTRAIL_CLICKHOUSE_COMPRESSION": v}))
		require.Equal(t, v, c.Compression)
		require.NoError(t, c.Validate())
	}
	require.Equal(t, "auto", chconn.FromEnv(config.FromMap(map[string]string{})).Compression)
	c := chconn.FromEnv(config.FromMap(map[string]string{"AUDITTRAIL_CLICKHOUSE_COMPRESSION": "gzip"}))
	require.ErrorContains(t, c.Validate(), "AUDITTRAIL_CLICKHOUSE_COMPRESSION")
}

// TestAutoCompressionIsOffOnLoopbackOnly: "auto" sends blocks uncompressed
// to a server on the same host and lz4-compressed to any other.
func TestAutoCompressionIsOffOnLoopbackOnly(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.1:9000": "none", "127.0.1.1:9000": "none", "[::1]:9000": "none", "localhost:9000": "none", "LOCALHOST:9440": "none",
		"10.0.0.7:9000": "lz4", "clickhouse.internal:9000": "lz4", "[2001:db8::1]:9000": "lz4", "clickhouse": "lz4",
	} {
		c := chconn.Defaults()
		c.Addr = addr
		require.Equal(t, want, c.CompressionMethod(), addr)
		c.Compression = "zstd"
		require.Equal(t, "zstd", c.CompressionMethod(), "an explicit choice is kept for %s", addr)
	}
}

// TestEveryCompressionTalksToTheServer runs a query that returns a block
// over each compression setting against the real server.
func TestEveryCompressionTalksToTheServer(t *testing.T) {
	proctest.Require(t)
	for _, v := range []string{"auto", "lz4", "zstd", "none"} {
		t.Run(v, func(t *testing.T) {
			c := chconn.Defaults()
			c.Compression = v
			conn, err := chconn.Open(context.Background(), c)
			require.NoError(t, err)
			defer conn.Close()
			ctx := context.Background()
			var n uint64
			require.NoError(t, conn.QueryRow(ctx, "SELECT sum(number) FROM numbers(100000)").Scan(&n))
			require.Equal(t, uint64(4999950000), n)
			// Blocks the client sends (inserts) are compressed too.
			table := fmt.Sprintf("default.chconn_compression_%s_%d", v, time.Now().UnixNano())
			require.NoError(t, conn.Exec(ctx, "CREATE TABLE "+table+" (n UInt64, s String) ENGINE = Memory"))
			defer func() { require.NoError(t, conn.Exec(ctx, "DROP TABLE "+table)) }()
			batch, err := conn.PrepareBatch(ctx, "INSERT INTO "+table+" (n, s)")
			require.NoError(t, err)
			for i := range 10000 {
				require.NoError(t, batch.Append(uint64(i), strings.Repeat("x", i%100)))
			}
			require.NoError(t, batch.Send())
			require.NoError(t, conn.QueryRow(ctx, "SELECT sum(n) + sum(length(s)) FROM "+table).Scan(&n))
			require.Equal(t, uint64(49995000+495000), n)
		})
	}
}
