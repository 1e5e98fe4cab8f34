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
