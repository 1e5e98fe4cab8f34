// Package main is the perfdoc command, which writes the latest figures
// into docs/performance.md.
//
// It reads the newest result of each benchmark in scripts/bench-results/
// (the pipeline bench's results.json and results.md, the flood bench's
// floodbench.json and floodbench.md, the cluster measurement's
// capacity.json) and replaces the text between the markers
// "<!-- perfdoc:begin -->" and "<!-- perfdoc:end -->" in docs/performance.md.
// Everything outside the markers is hand-written history and is kept.
//
// Run it from the repository root after a bench wrote new results:
//
//	go run ./scripts/cmd/perfdoc
//
// With -check it changes nothing and exits 1 when the section is out of
// step. Its tests fail in the same case, and check that every relative link
// in README.md and docs/*.md resolves.
package main

import (
	"flag"
	"fmt"
	"os"
)

func main() {
	results := flag.String("results", "scripts/bench-results", "folder the benchmarks write their results to")
	doc := flag.String("doc", "docs/performance.md", "document whose generated section is rewritten")
	check := flag.Bool("check", false, "change nothing; exit 1 when the generated section is out of step")
	flag.Parse()
	if err := run(*results, *doc, *check); err != nil {
		fmt.Fprintln(os.Stderr, "perfdoc:", err)
		os.Exit(1)
	}
}

func run(resultsDir, docPath string, check bool) error {
	section, err := Generate(resultsDir)
	if err != nil {
		return err
	}
	old, err := os.ReadFile(docPath)
	if err != nil {
		return err
	}
	updated, err := Splice(string(old), section)
	if err != nil {
		return fmt.Errorf("%s: %w", docPath, err)
	}
	if updated == string(old) {
		return nil
	}
	if check {
		return fmt.Errorf("%s is out of step with %s: run go run ./scripts/cmd/perfdoc", docPath, resultsDir)
	}
	return os.WriteFile(docPath, []byte(updated), 0o644)
}
