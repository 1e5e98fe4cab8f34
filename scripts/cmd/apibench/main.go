// Package main is the apibench command, which measures the read API against
// the same SQL.
//
// It runs the API and the same SQL with clickhouse-client side by side, on a
// dedicated database of generated events (1,000 workspaces, skewed: the
// largest holds about a tenth of all events), and measures the CSV export's
// rate and the API's memory. It uses the servers the services'
// configuration names (AUDITTRAIL_CLICKHOUSE_*, AUDITTRAIL_KAFKA_BROKERS).
//
//	apibench -api-bin .local/bin/api [-baseline-api-bin .local/bin/api-old] [-events 2000000] [-full | -huge] [-requests 200] [-only REGEXP] [-no-export] [-no-timeline] [-no-facets] [-no-first-pages] [-drop]
//	apibench -api-bin .local/bin/api -layouts -old-api-bin .local/bin/api-v4 [-full | -huge] [-requests 40] [-only REGEXP]
//
// It loads the events with INSERT ... SELECT FROM system.numbers (one
// statement per day of the window, so parts need no merging), unless the
// database already holds exactly that many; starts the API binary on a free
// port; then for each query shape and workspace times the first page
// through the API (HTTP, keep-alive) and the very statements the store runs
// for that page through clickhouse-client --time (its own measure, without
// process start-up), then each shape's timeline (hours in Europe/Paris)
// the same two ways (and through -baseline-api-bin's API, alternating,
// when given), the facets of a few shapes (the same two APIs), and
// finally streams the largest workspace's CSV export
// while sampling the API's resident memory. scripts/bench-api runs it.
//
// With -layouts it compares the events layouts (migration 5) in one run
// instead: it loads the events in the old layout (day partitions, no
// lookup tables), times every shape of issue 19 through the old API
// (-old-api-bin, built from before migration 5), moves the database to the
// new layout as a deployment would (migrations.Apply, then MoveLegacy),
// prints what each table costs per event, and times the same shapes
// through the new API (see layouts.go).
package main

import (
	"flag"
	"fmt"
	"os"
	"regexp"
)

const exportTopic = "bench-api-exports"

type options struct {
	events, workspaces, requests int
	database, apiBin, client     string
	drop, noExport, layouts      bool
	noTimeline, noFirstPages     bool
	noFacets                     bool
	oldAPIBin, baselineAPIBin    string
	only                         *regexp.Regexp
}

func main() {
	var o options
	full := false
	flag.IntVar(&o.events, "events", 2_000_000, "events to load")
	flag.BoolVar(&full, "full", false, "load 20,000,000 events (the issue's figure)")
	huge := flag.Bool("huge", false, "load 200,000,000 events (issue 19's large figure; about 20 GB of disk while it runs)")
	flag.BoolVar(&o.layouts, "layouts", false, "compare the old events layout with migration 5's (needs -old-api-bin)")
	flag.StringVar(&o.oldAPIBin, "old-api-bin", "", "with -layouts: the API binary built from before migration 5")
	flag.IntVar(&o.workspaces, "workspaces", 1000, "workspaces")
	flag.IntVar(&o.requests, "requests", 200, "timed requests per query shape and workspace, each way")
	flag.StringVar(&o.database, "database", "bench_api", "ClickHouse database for the generated events (reused when it holds the same count)")
	flag.StringVar(&o.apiBin, "api-bin", "", "the API binary to start (go build ./query-api/cmd/api)")
	flag.StringVar(&o.baselineAPIBin, "baseline-api-bin", "", "another API binary (an earlier build) whose timelines are timed beside -api-bin's, alternating, as the same run's baseline")
	flag.StringVar(&o.client, "client", "clickhouse-client", "clickhouse-client command")
	flag.BoolVar(&o.drop, "drop", false, "drop the database at the end")
	flag.BoolVar(&o.noExport, "no-export", false, "skip the CSV export")
	flag.BoolVar(&o.noTimeline, "no-timeline", false, "skip the timelines")
	flag.BoolVar(&o.noFacets, "no-facets", false, "skip the facets")
	flag.BoolVar(&o.noFirstPages, "no-first-pages", false, "skip the first pages")
	only := flag.String("only", "", "time only the first-page shapes whose \"workspace filter\" matches this regular expression")
	flag.Parse()
	var err error
	if o.only, err = regexp.Compile(*only); err != nil {
		fmt.Fprintln(os.Stderr, "apibench: -only:", err)
		os.Exit(2)
	}
	if full {
		o.events = 20_000_000
	}
	if *huge {
		o.events = 200_000_000
	}
	if o.apiBin == "" || o.events < o.workspaces || o.requests < 10 || (o.layouts && o.oldAPIBin == "") {
		fmt.Fprintln(os.Stderr, "apibench: -api-bin is required (and -old-api-bin with -layouts); -events must be at least -workspaces; -requests at least 10")
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "apibench:", err)
		os.Exit(1)
	}
}
