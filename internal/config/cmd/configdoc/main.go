// Package main is the configdoc command; it writes the configuration
// reference generated from internal/config's declarations:
//
//	go run ./internal/config/cmd/configdoc docs/configuration.md
//
// (go generate ./internal/config runs it.)
package main

import (
	"fmt"
	"os"

	"github.com/audittrail/audittrail/internal/config"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: configdoc <path of docs/configuration.md>")
		os.Exit(2)
	}
	if err := os.WriteFile(os.Args[1], config.Markdown(), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "configdoc:", err)
		os.Exit(1)
	}
}
