# shellcheck shell=bash
#
# scripts/lib/promtool.sh - Prometheus's promtool, for the tests of the alert
# rules (deploy/monitoring: promtool test rules). Built from the Go module
# proxy (github.com/prometheus/prometheus/cmd/promtool at PROMTOOL_VERSION)
# into $AUDITTRAIL_HOME/bin/promtool (default <repo>/.local/bin, git-ignored).
# The first build takes a few minutes on two cores; later runs find it.
#
#   promtool_install   build promtool when it is missing or another version
#                      (idempotent, quiet: prints nothing when it is there)
#
# Source it after services.sh (it uses _svc_home).

# PROMTOOL_VERSION is the Go module version of Prometheus whose promtool the
# tests run (v0.316.0 is Prometheus 3.16.0).
PROMTOOL_VERSION=v0.316.0

# _promtool_ok reports whether $1 is promtool built from $PROMTOOL_VERSION.
_promtool_ok() {
	[[ -x $1 ]] && go version -m "$1" 2>/dev/null | grep -qE "^[[:space:]]+mod[[:space:]]+github.com/prometheus/prometheus[[:space:]]+$PROMTOOL_VERSION([[:space:]]|$)"
}

promtool_install() {
	local home bin
	home=$(_svc_home) || return 1
	bin="$home/bin/promtool"
	_promtool_ok "$bin" && return 0
	printf '[promtool] building promtool %s from the Go module proxy into %s\n' "$PROMTOOL_VERSION" "$home/bin" >&2
	mkdir -p "$home/bin"
	GOBIN="$home/bin" go install "github.com/prometheus/prometheus/cmd/promtool@$PROMTOOL_VERSION" || {
		printf '[promtool] ERROR: could not build promtool; run: GOBIN=%s go install github.com/prometheus/prometheus/cmd/promtool@%s\n' "$home/bin" "$PROMTOOL_VERSION" >&2
		return 1
	}
	_promtool_ok "$bin" || {
		printf '[promtool] ERROR: %s is not promtool %s after the build\n' "$bin" "$PROMTOOL_VERSION" >&2
		return 1
	}
}
