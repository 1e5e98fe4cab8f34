// Package main is the migrate command, which applies the ClickHouse schema
// migrations.
//
// The writer and the sealer also apply them at start (unless
// AUDITTRAIL_MIGRATE_AT_START=false, when they only check and refuse to
// start on an older schema); the API only checks. It prints what it did:
//
//	migrate                 apply pending migrations
//	migrate -print          print the DDL for the connected server without running it
//	migrate -cluster audit  create the cluster variant ON CLUSTER audit (default:
//	                        AUDITTRAIL_CLICKHOUSE_CLUSTER): replicated tables behind
//	                        Distributed ones, sharded by workspace
//	migrate -reapply        run every migration again (idempotent); on a cluster
//	                        this creates the tables on nodes added since
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/audittrail/audittrail/internal/chconn"
	"github.com/audittrail/audittrail/internal/config"
	"github.com/audittrail/audittrail/schemas/migrations"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "migrate:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	printOnly := fs.Bool("print", false, "print the DDL for the connected server instead of applying it")
	cluster := fs.String("cluster", "", "ClickHouse cluster (remote_servers name) to create the schema on (default "+config.ClickHouseCluster.Name+"; empty: single server)")
	reapply := fs.Bool("reapply", false, "run every migration again, also those recorded (creates the tables on nodes added to a cluster)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	env := config.FromOS()
	chc := chconn.FromEnv(env)
	if *cluster != "" {
		chc.Cluster = *cluster
	}
	days := config.RetentionDays.Get(env)
	if err := errors.Join(env.Err(), config.CheckUnknown(), chc.Validate(), config.RetentionDays.Check(days)); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := chconn.Open(ctx, chc)
	if err != nil {
		return err
	}
	defer conn.Close()
	o := migrations.Options{Database: chc.Database, RetentionDays: days, Cluster: chc.Cluster, Reapply: *reapply}
	if *printOnly {
		v, err := migrations.ServerVersion(ctx, conn)
		if err != nil {
			return err
		}
		fmt.Printf("-- ClickHouse %s (TTL clause: %v, cluster: %q)\n", v, v.SupportsTTL(), o.Cluster)
		fmt.Printf("%s;\n", strings.Join(migrations.Prepare(o), ";\n"))
		for _, m := range migrations.All() {
			note := ""
			if len(m.Adds) > 0 {
				note = " (each ALTER runs only where the table lacks the column; the CREATEs above already have it)"
			}
			fmt.Printf("-- migration %d: %s%s\n%s;\n", m.Version, m.Name, note, strings.Join(m.Statements(o, v), ";\n"))
		}
		return nil
	}
	res, err := migrations.Apply(ctx, conn, o)
	if err != nil {
		return err
	}
	fmt.Printf("ClickHouse %s, database %s, cluster %q: applied %v (TTL clause: %v)\n", res.Server, chc.Database, chc.Cluster, res.Versions, res.Server.SupportsTTL())
	return nil
}
