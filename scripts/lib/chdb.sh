# shellcheck shell=bash
#
# scripts/lib/chdb.sh - current ClickHouse in process, for the tests that
# run our SQL on it (internal/chdbtest): the chdb-core Python package (an
# embedded ClickHouse 26.9) in a virtualenv at $AUDITTRAIL_HOME/chdb
# (default <repo>/.local/chdb, git-ignored). Only chdb-core is installed
# (--no-deps: the tests need neither pandas nor pyarrow): about 8 s and
# 560 MB the first time.
#
#   chdb_install   create the virtualenv and install chdb-core when it is
#                  missing or does not import (idempotent, quiet: prints
#                  nothing when it is already there), then export
#                  AUDITTRAIL_CHDB_PYTHON, the Python the tests run
#
# Source it after services.sh (it uses _svc_home, and _svc_apt_install when
# python3 cannot create a virtualenv).

# CHDB_VERSION is the chdb-core release the tests expect (ClickHouse 26.9).
CHDB_VERSION=26.9.0

# _chdb_ok reports whether python $1 imports chdb-core $CHDB_VERSION.
_chdb_ok() {
	[[ -x $1 ]] && "$1" -c "import sys, chdb; sys.exit(chdb.__version__ != '$CHDB_VERSION')" >/dev/null 2>&1
}

chdb_install() {
	local home venv py
	home=$(_svc_home) || return 1
	venv="$home/chdb"
	py="$venv/bin/python"
	if ! _chdb_ok "$py"; then
		printf '[chdb] installing chdb-core %s (ClickHouse 26.9 in process) into %s\n' "$CHDB_VERSION" "$venv" >&2
		_svc_venv chdb "$venv" || return 1
		"$py" -m pip install -q --disable-pip-version-check --no-deps "chdb-core==$CHDB_VERSION" >&2 || {
			printf '[chdb] ERROR: could not install chdb-core %s; run: %s -m pip install --no-deps chdb-core==%s\n' "$CHDB_VERSION" "$py" "$CHDB_VERSION" >&2
			return 1
		}
		_chdb_ok "$py" || {
			printf '[chdb] ERROR: chdb-core installed in %s but does not import\n' "$venv" >&2
			return 1
		}
	fi
	export AUDITTRAIL_CHDB_PYTHON=$py
}
