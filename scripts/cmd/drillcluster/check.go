package main

// Checking what arrived against what was accepted: what the read API
// shows, what ClickHouse stores and replayed, what the sink received.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/segmentio/encoding/json"

	"github.com/audittrail/audittrail/schemas/migrations"
	"github.com/audittrail/audittrail/scripts/internal/drillkit"
)

// apiView is what the running read API shows: every event of the given
// workspaces, walked page by page with next_cursor.
type apiView struct {
	ids    map[string]int // "ws/id" -> times shown
	byName map[string]int // event name -> events, for names outside the load
	pages  int
}

// readAPI walks GET /v1/workspaces/{ws}/audit-events for every workspace.
// loadEvent tells load events apart from others (the settings changes the
// drill made, which are in the trail too).
func readAPI(ctx context.Context, base, token string, workspaces []string, loadEvent func(ws, id string) bool) (apiView, error) {
	v := apiView{ids: map[string]int{}, byName: map[string]int{}}
	client := &http.Client{Timeout: time.Minute}
	for _, ws := range workspaces {
		cursor := ""
		for {
			q := url.Values{"limit": {"1000"}}
			if cursor != "" {
				q.Set("cursor", cursor)
			}
			req, err := http.NewRequestWithContext(ctx, http.MethodGet,
				base+"/v1/workspaces/"+url.PathEscape(ws)+"/audit-events?"+q.Encode(), nil)
			if err != nil {
				return v, err
			}
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := client.Do(req)
			if err != nil {
				return v, fmt.Errorf("read %s: %w", ws, err)
			}
			var page struct {
				Data []struct {
					ID          string `json:"id"`
					WorkspaceID string `json:"workspace_id"`
					Event       string `json:"event"`
				} `json:"data"`
				NextCursor *string `json:"next_cursor"`
			}
			if resp.StatusCode != http.StatusOK {
				b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
				resp.Body.Close()
				return v, fmt.Errorf("read %s: HTTP %d: %s", ws, resp.StatusCode, strings.TrimSpace(string(b)))
			}
			err = json.NewDecoder(resp.Body).Decode(&page)
			resp.Body.Close()
			if err != nil {
				return v, fmt.Errorf("read %s: %w", ws, err)
			}
			v.pages++
			for _, e := range page.Data {
				k := key(e.WorkspaceID, e.ID)
				v.ids[k]++
				if !loadEvent(e.WorkspaceID, e.ID) {
					v.byName[e.Event]++
				}
			}
			if page.NextCursor == nil || *page.NextCursor == "" || len(page.Data) == 0 {
				break
			}
			cursor = *page.NextCursor
		}
	}
	return v, nil
}

// stored reads the stored ids the way the API reads them (copies collapsed
// with LIMIT 1 BY); cheap enough to poll while the drill runs.
// rawRows counts the rows in the table, copies included.
func rawRows(ctx context.Context, conn driver.Conn, db string) (uint64, error) {
	var n uint64
	err := conn.QueryRow(ctx, fmt.Sprintf("SELECT count() FROM %s.%s", db, migrations.Table)).Scan(&n)
	return n, err
}

// missing counts the keys of want absent from got.
func missing[V any](want map[string]V, got map[string]int) int {
	n := 0
	for k := range want {
		if got[k] == 0 {
			n++
		}
	}
	return n
}

// storeWatch notes when each event first became visible in ClickHouse,
// polling once a second, so the drill can tell how long accepted events
// waited to be stored while a writer and a broker were down.
type storeWatch struct {
	mu    sync.Mutex
	first map[string]time.Time // "ws/id" -> first seen stored
	stop  context.CancelFunc
	done  chan struct{}
}

func watchStore(ctx context.Context, conn driver.Conn, db string) *storeWatch {
	ctx, cancel := context.WithCancel(ctx)
	w := &storeWatch{first: map[string]time.Time{}, stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			w.poll(ctx, conn, db)
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return w
}

func (w *storeWatch) poll(ctx context.Context, conn driver.Conn, db string) {
	rows, err := conn.Query(ctx, fmt.Sprintf("SELECT workspace_id, id FROM %s.%s", db, migrations.Table))
	if err != nil {
		return
	}
	defer rows.Close()
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	for rows.Next() {
		var ws, id string
		if rows.Scan(&ws, &id) != nil {
			return
		}
		k := key(ws, id)
		if _, ok := w.first[k]; !ok {
			w.first[k] = now
		}
	}
}

// close stops the polling.
func (w *storeWatch) close() {
	w.stop()
	<-w.done
}

// delays returns the p50, p99 and max of first-seen-stored minus accepted,
// over the accepted events that were seen stored.
func (w *storeWatch) delays(accepted map[string]time.Time) (p50, p99, maxD time.Duration) {
	w.mu.Lock()
	ds := make([]time.Duration, 0, len(accepted))
	for k, at := range accepted {
		if seen, ok := w.first[k]; ok {
			ds = append(ds, max(0, seen.Sub(at)))
		}
	}
	w.mu.Unlock()
	if len(ds) == 0 {
		return 0, 0, 0
	}
	slices.Sort(ds)
	return ds[len(ds)/2], ds[len(ds)*99/100], ds[len(ds)-1]
}

// uniqueRows counts the distinct events stored.
func uniqueRows(ctx context.Context, conn driver.Conn, db string) (int, error) {
	var n uint64
	err := conn.QueryRow(ctx, fmt.Sprintf("SELECT count() FROM (SELECT workspace_id, timestamp_ns, id FROM %s.%s GROUP BY workspace_id, timestamp_ns, id)",
		db, migrations.Table)).Scan(&n)
	return int(n), err
}

// check waits until everything accepted is stored and forwarded, then
// compares what the API shows and the sink received with what was accepted.
func (d *drill) check(ctx context.Context, rep *report) error {
	accepted, sent := d.load.snapshot()
	loadEnd := time.Now()
	_, err := waitFor(ctx, d.o.settle, func() bool {
		got, err := drillkit.Visible(ctx, d.ch, d.db)
		return err == nil && missing(accepted, got) == 0
	})
	if err != nil {
		logf("not everything accepted is stored after %s; counting anyway", d.o.settle)
	}
	rep.StoreSettled = time.Since(loadEnd)
	d.watch.poll(ctx, d.ch, d.db)
	d.watch.close()
	rep.StoreP50, rep.StoreP99, rep.StoreMax = d.watch.delays(accepted)
	forwardable := map[string]bool{}
	for k := range accepted {
		ws, id, _ := strings.Cut(k, "/")
		if d.enabled[ws] {
			forwardable[id] = true
		}
	}
	_, err = waitFor(ctx, d.o.settle, func() bool { return missing(forwardable, d.sink.counts()) == 0 })
	if err != nil {
		logf("not everything forwardable reached the sink after %s; counting anyway", d.o.settle)
	}
	if err := d.countStored(ctx, rep, accepted, sent); err != nil {
		return err
	}
	d.countForwarded(rep, sent, forwardable)
	d.countRows(ctx, rep)
	return nil
}

// countStored compares what the API shows with what was accepted and sent.
func (d *drill) countStored(ctx context.Context, rep *report, accepted map[string]time.Time, sent map[string]bool) error {
	workspaces := make([]string, 0, loadWorkspaces)
	for i := range loadWorkspaces {
		workspaces = append(workspaces, d.load.gen.Workspace(i))
	}
	view, err := readAPI(ctx, "http://"+d.api.addr(), d.token, workspaces, func(ws, id string) bool { return sent[key(ws, id)] })
	if err != nil {
		return err
	}
	rep.APIPages = view.pages
	rep.Accepted, rep.Unconfirmed = len(accepted), len(sent)-len(accepted)
	d.load.mu.Lock()
	rep.Retried = d.load.failures
	d.load.mu.Unlock()
	rep.AcceptedRate = float64(len(accepted)) / rep.LoadRan.Seconds()
	for k, n := range view.ids {
		if sent[k] {
			rep.Stored++
		}
		if n > 1 {
			rep.Duplicates++
		}
	}
	rep.Lost = missing(accepted, view.ids)
	rep.SettingsEvents = view.byName["Audit Forwarding Enabled"]
	rep.SettingsWant = len(d.enabled)
	for name, n := range view.byName {
		if name != "Audit Forwarding Enabled" {
			rep.Unexpected += n
		}
	}
	return nil
}

// countForwarded compares what the sink received with what was sent
// and is forwardable.
func (d *drill) countForwarded(rep *report, sent, forwardable map[string]bool) {
	got := d.sink.counts()
	rep.Forwardable = len(forwardable)
	for k := range sent {
		ws, id, _ := strings.Cut(k, "/")
		n := got[id]
		if n == 0 {
			continue
		}
		if d.enabled[ws] {
			rep.ForwardedUnique++
			rep.ForwardDeliveries += n
		} else {
			rep.ForwardStray++
		}
	}
	rep.ForwardMissing = missing(forwardable, got)
}

// countRows records the rows each writer inserted, how many of them were
// replays, how many copies the reads hide, and the groups afterwards.
func (d *drill) countRows(ctx context.Context, rep *report) {
	rep.WritersAfter = fmt.Sprint(d.assigned(ctx))
	rows := make([]int, len(d.writers))
	for i, w := range d.writers {
		v, _ := w.metric(ctx, "audittrail_writer_rows_inserted_total")
		rows[i] = int(v)
	}
	rep.RowsPerWriter = fmt.Sprint(rows)
	inserted := d.victimRows
	for _, n := range rows {
		inserted += n
	}
	if unique, err := uniqueRows(ctx, d.ch, d.db); err == nil {
		rep.RowsReplayed = inserted - unique
		if raw, err := rawRows(ctx, d.ch, d.db); err == nil {
			rep.CopiesHidden = int(raw) - unique
		}
	}
	if g, err := describeGroup(ctx, d.adm, d.writerGroup); err == nil {
		rep.WriterGroupAfter = g.String()
	}
	if g, err := describeGroup(ctx, d.adm, d.fwdGroup); err == nil {
		rep.ForwarderGroupAfter = g.String()
	}
}
