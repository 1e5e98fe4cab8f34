# shellcheck shell=bash
#
# scripts/lib/browser.sh - the headless browser the page's end-to-end test
# drives: Debian's chromium package at /usr/bin/chromium.
#
#   browser_install   install chromium when it is missing (idempotent, quiet:
#                     prints nothing when it is already there)
#
# Source it after services.sh (it reuses _svc_apt_install, which runs
# apt-get update only when needed and as root or through sudo -n).

# BROWSER_BIN is where the end-to-end test expects the browser.
BROWSER_BIN=/usr/bin/chromium

browser_install() {
	if [[ -x $BROWSER_BIN ]]; then
		return 0
	fi
	printf '[browser] installing chromium (Debian package) for the page test\n' >&2
	_svc_apt_install chromium >/dev/null 2>&1 || {
		printf '[browser] ERROR: could not install chromium; run: apt-get install -y chromium\n' >&2
		return 1
	}
	[[ -x $BROWSER_BIN ]] || {
		printf '[browser] ERROR: chromium installed but %s is missing\n' "$BROWSER_BIN" >&2
		return 1
	}
}

# AXE_VERSION is the axe-core release (npm) the page's accessibility checks
# inject into the page.
AXE_VERSION=4.14.1

# axe_install installs axe-core $AXE_VERSION with npm into
# $AUDITTRAIL_HOME/axe when it is missing (idempotent, quiet when there) and
# exports AUDITTRAIL_AXE, the script the browser tests inject.
axe_install() {
	local home dir js
	home=$(_svc_home) || return 1
	dir="$home/axe"
	js="$dir/node_modules/axe-core/axe.min.js"
	if [[ ! -s $js ]] || ! grep -q "\"version\": \"$AXE_VERSION\"" "$dir/node_modules/axe-core/package.json" 2>/dev/null; then
		printf '[browser] installing axe-core %s (npm) for the accessibility checks\n' "$AXE_VERSION" >&2
		command -v npm >/dev/null 2>&1 || _svc_apt_install npm >/dev/null 2>&1 || {
			printf '[browser] ERROR: npm is missing; run: apt-get install -y npm\n' >&2
			return 1
		}
		mkdir -p "$dir"
		npm install --silent --no-audit --no-fund --prefix "$dir" "axe-core@$AXE_VERSION" >&2 || {
			printf '[browser] ERROR: npm could not install axe-core %s\n' "$AXE_VERSION" >&2
			return 1
		}
	fi
	export AUDITTRAIL_AXE="$js"
}
