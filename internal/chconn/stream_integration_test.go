package chconn_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/chconn"
	"github.com/audittrail/audittrail/internal/stacktest"
)

// cutProxy forwards connections to a server. Once cut is set to n > 0, it
// forwards n more bytes from the client and then closes both sides, as a
// client that dies in the middle of what it sends.
type cutProxy struct {
	ln   net.Listener
	to   string
	cut  atomic.Int64
	wg   sync.WaitGroup
	done atomic.Bool
}

func newCutProxy(t *testing.T, to string) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &cutProxy{ln: ln, to: to}
	p.wg.Go(p.accept)
	t.Cleanup(func() { _ = ln.Close(); p.wg.Wait() })
	return p
}

func (p *cutProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.to)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.wg.Go(func() { _, _ = io.Copy(c, s); _ = c.Close() })
		p.wg.Go(func() {
			defer func() { _ = s.Close(); _ = c.Close() }()
			buf := make([]byte, 4096)
			for {
				n, err := c.Read(buf)
				if left := p.cut.Load(); left > 0 && n > 0 {
					k := min(int64(n), left)
					_, _ = s.Write(buf[:k])
					if p.cut.Add(-k) == 0 {
						p.done.Store(true)
						return
					}
					continue
				}
				if n > 0 {
					if _, werr := s.Write(buf[:n]); werr != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		})
	}
}

// TestInsertCutByTheConnection streams INSERTs of 2,048-row blocks
// through a connection that dies: ClickHouse 18.16 takes a connection
// closed between two blocks for the end of the data and stores every
// block it received (so an aborted or crashed streamed insert leaves
// rows), and one closed in the middle of a block for a failed INSERT,
// which stores nothing of it. So a failed insert may have stored some
// of its rows, or none; never part of a block. InsertBlocks's callers
// retry the whole insert into tables where a repeated row is harmless.
func TestInsertCutByTheConnection(t *testing.T) {
	conn, ch := stacktest.ClickHouse(t, 90)
	ctx := context.Background()
	p := newCutProxy(t, ch.Addr)
	cfg := ch
	cfg.Addr = p.ln.Addr().String()
	pconn, err := chconn.Open(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = pconn.Close() })

	for _, tc := range []struct {
		name   string
		cut    bool // mid-block, by the proxy; else the client closes after the first block
		stored uint64
	}{
		{"closed between blocks", false, chconn.BlockRows},
		{"cut in a block", true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			table := ch.Database + ".cut_" + strings.ReplaceAll(tc.name, " ", "_")
			require.NoError(t, conn.Exec(ctx, "CREATE TABLE "+table+" (n UInt64, s String) ENGINE = MergeTree() ORDER BY n"))
			b, err := pconn.PrepareBatch(ctx, "INSERT INTO "+table+" (n, s)")
			require.NoError(t, err)
			appendBlock := func(first int, s string) error {
				ns, ss := make([]uint64, chconn.BlockRows), make([]string, chconn.BlockRows)
				for i := range ns {
					ns[i], ss[i] = uint64(first+i), s
				}
				if err := chconn.AppendColumns(b, []string{"n", "s"}, ns, ss); err != nil {
					return err
				}
				return b.Flush()
			}
			require.NoError(t, appendBlock(0, "first"))
			if tc.cut {
				p.cut.Store(64 << 10) // the second block is about 2 MiB: cut in its middle
				err = appendBlock(chconn.BlockRows, strings.Repeat("second", 170))
				if err == nil {
					err = b.Send()
				}
				require.Error(t, err, "the INSERT was cut")
				require.True(t, p.done.Load(), "the proxy cut the connection")
			} else {
				require.NoError(t, b.Abort()) // closes the connection
			}

			// Once the server is done with the INSERT:
			require.Eventually(t, func() bool {
				var running uint64
				require.NoError(t, conn.QueryRow(ctx, "SELECT count() FROM system.processes WHERE query LIKE ?",
					"INSERT INTO "+table+"%").Scan(&running))
				return running == 0
			}, 30*time.Second, 20*time.Millisecond)
			var first, second uint64
			require.NoError(t, conn.QueryRow(ctx, fmt.Sprintf("SELECT countIf(s = 'first'), countIf(s != 'first') FROM %s", table)).Scan(&first, &second))
			require.Equal(t, []uint64{tc.stored, 0}, []uint64{first, second})
		})
	}
}
