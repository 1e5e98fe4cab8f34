package config

import (
	"fmt"
	"strings"
)

//go:generate go run ./cmd/configdoc ../../docs/configuration.md

// Markdown renders docs/configuration.md from the declarations: one table
// row per variable, in declaration order.
func Markdown() []byte {
	var b strings.Builder
	b.WriteString(`# Configuration

<!-- Generated from the declarations in internal/config; do not edit.
     Regenerate with: go generate ./internal/config
     (or: go run ./internal/config/cmd/configdoc docs/configuration.md).
     TestConfigurationDocIsCurrent fails when this file is out of step. -->

Every service reads its configuration from ` + "`AUDITTRAIL_*`" + ` environment
variables. Each variable is declared once, in ` + "`internal/config`" + `; a
service refuses to start when a value is not accepted (the message names the
variable and what it accepts) and when an ` + "`AUDITTRAIL_*`" + ` variable it
does not know is set (most likely a typo). An empty value means the default.

| Variable | Read by | Default | Accepted values | Meaning |
|---|---|---|---|---|
`)
	for _, v := range Variables {
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s |\n", v.Name, cell(v.Readers), code(v.Default), cell(v.Accepts), cell(v.Description))
	}
	return []byte(b.String())
}

// cell escapes text for a Markdown table cell.
func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// code writes a default as code, or "(none)" when empty.
func code(s string) string {
	if s == "" {
		return "(none)"
	}
	return "`" + s + "`"
}
