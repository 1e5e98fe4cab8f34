# shellcheck shell=bash
#
# scripts/lib/promtool.sh - Prometheus's promtool, for the tests of the alert
# rules (deploy/monitoring: promtool check rules, promtool test rules), at
# $AUDITTRAIL_HOME/bin/promtool (default <repo>/.local/bin, git-ignored).
#
# It is taken from Debian's prometheus package (Prometheus 2.42): the package
# is downloaded, not installed (no server, no maintainer scripts), and only
# its promtool binary is extracted: a few seconds. Where apt-get cannot
# download it, promtool is built from the Go module proxy instead
# (github.com/prometheus/prometheus/cmd/promtool at PROMTOOL_MODULE; minutes
# on two cores). The rule files and their tests use nothing newer than 2.42.
#
#   promtool_install   provide promtool when it is missing (idempotent,
#                      quiet: prints nothing when it is there)
#
# Source it after services.sh (it uses _svc_home, _svc_apt_candidate and
# _svc_as_root).

PROMTOOL_MODULE=v0.316.0 # Prometheus 3.16.0, the fallback build

# _promtool_ok reports whether $1 runs and is a promtool.
_promtool_ok() {
	[[ -x $1 ]] && "$1" --version 2>&1 | grep -q '^promtool, version '
}

# _promtool_from_debian extracts promtool from Debian's prometheus package
# into $1 (a bin directory).
_promtool_from_debian() {
	local dir=$1 tmp deb
	command -v apt-get >/dev/null 2>&1 && command -v dpkg-deb >/dev/null 2>&1 || return 1
	if ! _svc_apt_candidate prometheus; then
		_svc_as_root env DEBIAN_FRONTEND=noninteractive apt-get -q -y update >&2 || return 1
	fi
	tmp=$(mktemp -d) || return 1
	(cd "$tmp" && chmod 777 . && apt-get -q download prometheus >/dev/null 2>&1) &&
		deb=$(ls "$tmp"/prometheus_*.deb 2>/dev/null | head -n 1) && [[ -n $deb ]] &&
		dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" ./usr/bin/promtool &&
		install -m 0755 "$tmp/usr/bin/promtool" "$dir/promtool"
	local rc=$?
	rm -rf "$tmp"
	return $rc
}

promtool_install() {
	local home bin
	home=$(_svc_home) || return 1
	bin="$home/bin/promtool"
	_promtool_ok "$bin" && return 0
	mkdir -p "$home/bin"
	printf '[promtool] taking promtool from Debian'"'"'s prometheus package into %s\n' "$home/bin" >&2
	if ! _promtool_from_debian "$home/bin" || ! _promtool_ok "$bin"; then
		printf '[promtool] Debian'"'"'s package is not available; building promtool %s from the Go module proxy (minutes)\n' "$PROMTOOL_MODULE" >&2
		GOBIN="$home/bin" go install "github.com/prometheus/prometheus/cmd/promtool@$PROMTOOL_MODULE" || {
			printf '[promtool] ERROR: could not build promtool; run: GOBIN=%s go install github.com/prometheus/prometheus/cmd/promtool@%s\n' "$home/bin" "$PROMTOOL_MODULE" >&2
			return 1
		}
	fi
	_promtool_ok "$bin" || {
		printf '[promtool] ERROR: %s does not run\n' "$bin" >&2
		return 1
	}
}
