# shellcheck shell=bash
#
# scripts/lib/schemathesis.sh - Schemathesis (property-based tests generated
# from the OpenAPI document) for the API contract test
# (scripts/e2e/contract_test.go): the PyPI package in a virtualenv at
# $AUDITTRAIL_HOME/schemathesis (default <repo>/.local/schemathesis,
# git-ignored). About 10 s and 60 MB the first time.
#
#   schemathesis_install   create the virtualenv and install Schemathesis
#                          $SCHEMATHESIS_VERSION when it is missing or another
#                          version (idempotent, quiet when it is there), then
#                          export AUDITTRAIL_SCHEMATHESIS, the command the
#                          test runs
#
# Source it after services.sh (it uses _svc_home and _svc_apt_install).

# SCHEMATHESIS_VERSION is the release the contract test expects.
SCHEMATHESIS_VERSION=4.32.5

# _schemathesis_ok reports whether $1 is Schemathesis $SCHEMATHESIS_VERSION.
_schemathesis_ok() {
	[[ -x $1 ]] && [[ $("$1" --version 2>/dev/null) == "schemathesis, version $SCHEMATHESIS_VERSION" ]]
}

schemathesis_install() {
	local home venv bin
	home=$(_svc_home) || return 1
	venv="$home/schemathesis"
	bin="$venv/bin/schemathesis"
	if ! _schemathesis_ok "$bin"; then
		printf '[schemathesis] installing schemathesis %s into %s\n' "$SCHEMATHESIS_VERSION" "$venv" >&2
		_svc_venv schemathesis "$venv" || return 1
		"$venv/bin/pip" install -q --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION" >&2 || {
			printf '[schemathesis] ERROR: pip could not install schemathesis %s\n' "$SCHEMATHESIS_VERSION" >&2
			return 1
		}
		_schemathesis_ok "$bin" || {
			printf '[schemathesis] ERROR: %s does not report version %s\n' "$bin" "$SCHEMATHESIS_VERSION" >&2
			return 1
		}
	fi
	export AUDITTRAIL_SCHEMATHESIS="$bin"
}
