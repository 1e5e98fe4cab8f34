# shellcheck shell=bash
#
# scripts/lib/services.sh - install, start and stop the real servers the
# audittrail pipeline needs on this machine (no Docker):
#
#   Kafka 4.1 (KRaft, single combined broker+controller node)
#       PLAINTEXT  127.0.0.1:9092     CONTROLLER 127.0.0.1:9093
#   ClickHouse (Debian package, 18.16 on bookworm)
#       native TCP 127.0.0.1:9000     HTTP       127.0.0.1:8123
#
# Everything lives under $AUDITTRAIL_HOME (default: <repo>/.local):
#   kafka/jars/               broker jars fetched by Maven (deploy/kafka/pom.xml)
#   kafka/server.properties   rendered from deploy/kafka/server.properties
#   kafka/data/               KRaft metadata + topic logs (log.dirs)
#   kafka/kafka.pid kafka.log
#   clickhouse/etc/           rendered deploy/clickhouse/{config,users}.xml
#   clickhouse/data/ tmp/ user_files/ format_schemas/ log/
#   clickhouse/clickhouse.pid
#
# Source it (bash only) and call: at_root, kafka_install, kafka_start,
# kafka_stop, clickhouse_install, clickhouse_start, clickhouse_stop,
# services_up, services_down, services_status. Every function is idempotent,
# prints progress to stderr prefixed with "[services]" and returns non-zero on
# failure (it never calls exit, so it is safe to source from an interactive
# shell). scripts/services is the CLI front-end.
#
# Knobs (environment):
#   AUDITTRAIL_HOME          data folder (default <repo>/.local)
#   AUDITTRAIL_KAFKA_HEAP    JVM heap flags (default "-Xms256m -Xmx1g")
#   AUDITTRAIL_KAFKA_TIMEOUT seconds to wait for the broker (default 90)
#   AUDITTRAIL_CH_TIMEOUT    seconds to wait for ClickHouse (default 60)

# Fixed by deploy/kafka/server.properties and deploy/clickhouse/config.xml.
SVC_HOST=127.0.0.1
SVC_KAFKA_PORT=9092
SVC_KAFKA_CONTROLLER_PORT=9093
SVC_CH_TCP_PORT=9000
SVC_CH_HTTP_PORT=8123
# Fixed KRaft cluster id (base64url of "audittrail-local", 16 bytes).
SVC_KAFKA_CLUSTER_ID=YXVkaXR0cmFpbC1sb2NhbA

# Inner script used to launch daemons: records its own pid ($$, the final
# daemon pid since it execs; right even when setsid had to fork) in $0, closes
# every inherited descriptor above stderr (so a caller's pipes - e.g. a CI
# runner capturing output - are never held open by the daemon), then execs
# "$@". The loop carries no redirection of its own: an `exec` inside a
# redirected compound command makes that redirection permanent in bash, which
# once left every daemon's stderr (its JSON log) on /dev/null. Descriptors
# listed by the glob but already gone (the listing's own) are skipped.
# shellcheck disable=SC2016 # expanded by the inner bash
SVC_DAEMON_WRAPPER='echo $$ >"$0" || exit 1
for fd in /proc/$$/fd/*; do
	fd=${fd##*/}
	if [[ $fd =~ ^[0-9]+$ ]] && ((fd > 2)) && [[ -e /proc/$$/fd/$fd ]]; then eval "exec $fd>&-"; fi
done
exec "$@"'

# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

_svc_log() { printf '[services] %s\n' "$*" >&2; }
_svc_err() { printf '[services] ERROR: %s\n' "$*" >&2; return 1; }

# The repository root, resolved once when this file is sourced (a relative
# BASH_SOURCE would no longer resolve after a later cd).
SVC_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)

# at_root prints the repository root (absolute, symlinks resolved).
at_root() {
	[[ -n $SVC_ROOT ]] || return 1
	printf '%s\n' "$SVC_ROOT"
}

# _svc_home prints the absolute data folder, creating it.
_svc_home() {
	local h=${AUDITTRAIL_HOME:-}
	if [[ -z $h ]]; then
		h="$(at_root)/.local" || return 1
	fi
	mkdir -p "$h" || return 1
	(cd "$h" && pwd -P)
}

_svc_now() { date +%s; }

# _svc_as_root CMD... runs CMD as root (directly, or via non-interactive sudo).
_svc_as_root() {
	if [[ $(id -u) -eq 0 ]]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo -n "$@"
	else
		_svc_err "need root to run: $*"
	fi
}

# _svc_port_open PORT: true when something accepts TCP connections on
# 127.0.0.1:PORT.
_svc_port_open() {
	# shellcheck disable=SC2016 # expanded by the inner bash
	timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$SVC_HOST" "$1" 2>/dev/null
}

# _svc_port_owner PORT prints the pid listening on PORT (empty if unknown).
_svc_port_owner() {
	local port=$1 out=
	if command -v ss >/dev/null 2>&1; then
		out=$(ss -Hltnp "sport = :$port" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n1) || true
		out=${out#pid=}
	fi
	if [[ -z $out ]] && command -v lsof >/dev/null 2>&1; then
		out=$(lsof -nP -t -iTCP:"$port" -sTCP:LISTEN 2>/dev/null | head -n1) || true
	fi
	if [[ -z $out ]] && command -v fuser >/dev/null 2>&1; then
		out=$(fuser -n tcp "$port" 2>/dev/null | awk '{print $1}') || true
	fi
	printf '%s\n' "$out"
}

# _svc_alive PID: the process exists and is not a zombie (a daemon whose
# parent is a non-reaping pid 1 stays a zombie after it died).
_svc_alive() {
	local stat
	kill -0 "$1" 2>/dev/null || return 1
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
	stat=${stat##*) }
	[[ ${stat:0:1} != Z ]]
}

# _svc_cmdline PID prints the command line of PID (args joined by spaces).
_svc_cmdline() {
	[[ -r /proc/$1/cmdline ]] || return 1
	tr '\0' ' ' <"/proc/$1/cmdline"
}

# _svc_is_ours PID NEEDLE...: PID is alive and its command line contains every
# NEEDLE (used to tell our daemons apart from foreign ones and recycled pids).
_svc_is_ours() {
	local pid=$1 cmd n
	shift
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	_svc_alive "$pid" || return 1
	cmd=$(_svc_cmdline "$pid") || return 1
	for n in "$@"; do
		[[ $cmd == *"$n"* ]] || return 1
	done
}

# _svc_find_pid PIDFILE PORTS NEEDLE...: prints the pid of our running daemon,
# from the pid file or (when the pid file is missing/stale) from the process
# listening on one of PORTS (space separated). Rewrites/removes the pid file.
_svc_find_pid() {
	local pidf=$1 ports=$2 pid='' port
	shift 2
	if [[ -f $pidf ]]; then
		pid=$(head -n1 "$pidf" 2>/dev/null) || true
		if _svc_is_ours "$pid" "$@"; then
			printf '%s\n' "$pid"
			return 0
		fi
		_svc_log "removing stale pid file $pidf (pid ${pid:-?} is gone)"
		rm -f "$pidf"
	fi
	for port in $ports; do
		pid=$(_svc_port_owner "$port")
		if [[ -n $pid ]] && _svc_is_ours "$pid" "$@"; then
			printf '%s\n' "$pid" >"$pidf"
			printf '%s\n' "$pid"
			return 0
		fi
	done
	return 1
}

# _svc_check_ports_free NAME PORTS: fails with a clear message when any port is
# taken (by a process that is not ours: callers check ours first).
_svc_check_ports_free() {
	local name=$1 port pid desc
	for port in $2; do
		if _svc_port_open "$port"; then
			pid=$(_svc_port_owner "$port")
			desc="unknown process"
			if [[ -n $pid ]]; then
				desc="pid $pid: $(_svc_cmdline "$pid" 2>/dev/null | tr -s "\n\t" "  " | cut -c1-160)"
			fi
			_svc_err "$name: port $SVC_HOST:$port is already in use by something else ($desc); stop it or free the port"
			return 1
		fi
	done
}

# _svc_stop_pid NAME PID: SIGTERM, wait up to 30 s, then SIGKILL.
_svc_stop_pid() {
	local name=$1 pid=$2 i
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < 300; i++)); do
		_svc_alive "$pid" || return 0
		sleep 0.1
	done
	_svc_log "$name (pid $pid) did not stop within 30s, sending SIGKILL"
	kill -KILL "$pid" 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do
		_svc_alive "$pid" || return 0
		sleep 0.1
	done
	_svc_err "$name (pid $pid) survived SIGKILL"
}

# _svc_locked LOCKFILE CMD...: runs CMD in a subshell holding an exclusive
# lock, so concurrent `scripts/services up` calls do not race. The lock is fd 9;
# daemons are started with 9>&- so they do not inherit it.
# _svc_stop_server NAME DIR PIDFN: stop our server NAME (pid from PIDFN) and
# remove DIR/NAME.pid; a server that is not running is not an error.
_svc_stop_server() {
	local name=$1 dir=$2 pidfn=$3 pid
	if ! pid=$("$pidfn"); then
		rm -f "$dir/$name.pid"
		_svc_log "$name not running"
		return 0
	fi
	_svc_log "stopping $name (pid $pid)"
	_svc_stop_pid "$name" "$pid" || return 1
	rm -f "$dir/$name.pid"
	_svc_log "$name stopped"
}

_svc_locked() {
	local lock=$1
	shift
	mkdir -p "$(dirname "$lock")" || return 1
	(
		exec 9>"$lock" || exit 1
		if command -v flock >/dev/null 2>&1; then
			flock -w 600 9 || {
				_svc_err "timed out waiting for lock $lock"
				exit 1
			}
		fi
		"$@"
	)
}

# _svc_render SRC DST SED-EXPR...: writes SRC through sed into DST, only
# touching DST when the content changes.
_svc_render() {
	local src=$1 dst=$2 tmp
	shift 2
	local args=() e
	for e in "$@"; do args+=(-e "$e"); done
	tmp="$dst.tmp.$$"
	sed "${args[@]}" "$src" >"$tmp" || {
		rm -f "$tmp"
		return 1
	}
	if [[ -f $dst ]] && cmp -s "$tmp" "$dst"; then
		rm -f "$tmp"
	else
		mv -f "$tmp" "$dst"
	fi
}

# _svc_sed_escape STR: escapes STR for the replacement side of s#...#...#.
_svc_sed_escape() { printf '%s' "$1" | sed -e 's/[\\&#]/\\&/g'; }

_svc_tail() {
	local f
	for f in "$@"; do
		[[ -s $f ]] || continue
		_svc_log "---- last lines of $f ----"
		tail -n 40 "$f" | sed 's/^/[services]   /' >&2
	done
}

# _svc_apt_candidate PKG: apt knows an installable version of PKG (no
# `| grep -q`: with pipefail an early grep exit would fail the pipeline).
_svc_apt_candidate() {
	local out
	out=$(apt-cache policy "$1" 2>/dev/null) || return 1
	[[ $out == *"Candidate: "[!\(]* ]]
}

# _svc_venv TAG DIR: a fresh Python virtualenv in DIR (python3-venv is
# installed when python3 cannot make one); TAG prefixes the error.
_svc_venv() {
	python3 -m venv --clear "$2" >/dev/null 2>&1 && return 0
	_svc_apt_install python3-venv >/dev/null 2>&1 && python3 -m venv --clear "$2" >/dev/null 2>&1 && return 0
	printf '[%s] ERROR: python3 cannot create a virtualenv in %s; run: apt-get install -y python3-venv\n' "$1" "$2" >&2
	return 1
}

# _svc_apt_install PKG...: apt-get install, running apt-get update only when a
# package has no install candidate. Service autostart in maintainer scripts is
# blocked with a temporary policy-rc.d (we run our own servers).
_svc_apt_install() {
	command -v apt-get >/dev/null 2>&1 || {
		_svc_err "apt-get not found; install $* by hand"
		return 1
	}
	local p need_update=
	for p in "$@"; do
		if ! _svc_apt_candidate "$p"; then
			need_update=1
		fi
	done
	export DEBIAN_FRONTEND=noninteractive
	local aptopts=(-q -y -o DPkg::Lock::Timeout=300 -o Dpkg::Use-Pty=0)
	if [[ -n $need_update ]]; then
		_svc_log "apt-get update"
		_svc_as_root env DEBIAN_FRONTEND=noninteractive apt-get "${aptopts[@]}" update >&2 || return 1
	fi
	_svc_log "apt-get install $*"
	(
		policy=/usr/sbin/policy-rc.d
		if [[ ! -e $policy ]]; then
			trap '_svc_as_root rm -f "$policy"' EXIT
			printf '#!/bin/sh\n# temporary, from audittrail scripts/lib/services.sh\nexit 101\n' |
				_svc_as_root tee "$policy" >/dev/null &&
				_svc_as_root chmod 755 "$policy"
		fi
		_svc_as_root env DEBIAN_FRONTEND=noninteractive apt-get "${aptopts[@]}" \
			--no-install-recommends install "$@" >&2
	)
}

# ---------------------------------------------------------------------------
# Kafka
# ---------------------------------------------------------------------------

# _kafka_java prints the java binary to use (JAVA_HOME first), if it is >= 17.
_kafka_java() {
	local j ver
	for j in ${JAVA_HOME:+"$JAVA_HOME/bin/java"} "$(command -v java 2>/dev/null)"; do
		[[ -n $j && -x $j ]] || continue
		ver=$("$j" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p;T;q') || true
		if [[ $ver =~ ^[0-9]+$ ]] && ((ver >= 17)); then
			printf '%s\n' "$j"
			return 0
		fi
	done
	return 1
}

_kafka_dir() {
	local h
	h=$(_svc_home) || return 1
	printf '%s/kafka\n' "$h"
}

# kafka_install: Java 17+ (and Maven when jars must be fetched) via apt, then
# the broker jars into $AUDITTRAIL_HOME/kafka/jars. Skipped when the jars are
# there and deploy/kafka/pom.xml has not changed (sha256 stamp).
kafka_install() {
	local kdir
	kdir=$(_kafka_dir) || return 1
	_svc_locked "$kdir/.lock" _kafka_install_locked
}

_kafka_install_locked() {
	local root kdir jars pom stamp want tmp pid
	root=$(at_root) || return 1
	kdir=$(_kafka_dir) || return 1
	jars=$kdir/jars
	pom=$root/deploy/kafka/pom.xml
	stamp=$jars/.pom.sha256

	if ! _kafka_java >/dev/null; then
		_svc_log "java 17+ not found, installing it"
		# Slim Debian images lack this dir and the JRE postinst
		# (update-alternatives for java.1.gz) then fails.
		_svc_as_root mkdir -p /usr/share/man/man1 || true
		if _svc_apt_candidate openjdk-17-jre-headless || ! _svc_apt_candidate default-jre-headless; then
			_svc_apt_install openjdk-17-jre-headless || return 1
		else
			_svc_apt_install default-jre-headless || return 1
		fi
		_kafka_java >/dev/null || {
			_svc_err "java 17+ still not found after install"
			return 1
		}
	fi

	want=$(sha256sum "$pom" | cut -d' ' -f1) || return 1
	if [[ -f $stamp && "$(cat "$stamp")" == "$want" ]] && compgen -G "$jars/kafka_2.13-*.jar" >/dev/null; then
		_svc_log "kafka jars up to date ($jars)"
		return 0
	fi
	if pid=$(_svc_find_pid "$kdir/kafka.pid" "$SVC_KAFKA_PORT $SVC_KAFKA_CONTROLLER_PORT" kafka.Kafka "$kdir/server.properties" 2>/dev/null) &&
		compgen -G "$jars/kafka_2.13-*.jar" >/dev/null; then
		_svc_log "WARNING: $pom changed but the broker is running (pid $pid) on the old jars; run 'scripts/services down' then 'up' to refresh them"
		return 0
	fi

	if ! command -v mvn >/dev/null 2>&1; then
		_svc_log "mvn not found, installing maven"
		_svc_apt_install maven || return 1
	fi
	_svc_log "fetching kafka jars with maven (deploy/kafka/pom.xml)"
	tmp=$kdir/jars.tmp.$$
	rm -rf "$tmp"
	mkdir -p "$kdir" || return 1
	if ! mvn -B -Dstyle.color=never -f "$pom" dependency:copy-dependencies \
		-DoutputDirectory="$tmp" >"$kdir/mvn.log" 2>&1; then
		rm -rf "$tmp"
		_svc_tail "$kdir/mvn.log"
		_svc_err "mvn dependency:copy-dependencies failed (network to Maven Central?), see $kdir/mvn.log"
		return 1
	fi
	compgen -G "$tmp/kafka_2.13-*.jar" >/dev/null || {
		rm -rf "$tmp"
		_svc_err "maven did not produce kafka_2.13-*.jar"
		return 1
	}
	printf '%s\n' "$want" >"$tmp/.pom.sha256"
	rm -rf "$jars" && mv "$tmp" "$jars" || return 1
	_svc_log "kafka jars ready: $(find "$jars" -name '*.jar' | wc -l) jars in $jars"
}

# _kafka_version prints the broker version (from the jar name).
_kafka_version() {
	local kdir f
	kdir=$(_kafka_dir) || return 1
	for f in "$kdir"/jars/kafka_2.13-*.jar; do
		[[ -e $f ]] || return 1
		f=${f##*/kafka_2.13-}
		printf '%s\n' "${f%.jar}"
		return 0
	done
}

_kafka_pid() {
	local kdir
	kdir=$(_kafka_dir) || return 1
	_svc_find_pid "$kdir/kafka.pid" "$SVC_KAFKA_PORT $SVC_KAFKA_CONTROLLER_PORT" \
		kafka.Kafka "$kdir/server.properties"
}

# _kafka_wait PID LOG TIMEOUT: waits until the broker port accepts connections
# and the log says "Kafka Server started" (the log is rotated at each start).
_kafka_wait() {
	_kafka_wait_node "$1" "$2" "$SVC_KAFKA_PORT" $(($(_svc_now) + $3)) kafka
}

# _kafka_wait_node PID LOG PORT DEADLINE NAME: the same for any broker
# process (scripts/lib/cluster.sh uses it for its nodes).
_kafka_wait_node() {
	local pid=$1 log=$2 port=$3 deadline=$4 name=$5
	while :; do
		if ! _svc_alive "$pid"; then
			_svc_tail "$log"
			_svc_err "$name (pid $pid) exited during startup, see $log"
			return 1
		fi
		if _svc_port_open "$port" && grep -q 'Kafka Server started' "$log" 2>/dev/null; then
			return 0
		fi
		if (($(_svc_now) >= deadline)); then
			_svc_tail "$log"
			_svc_err "$name (pid $pid) not ready on $SVC_HOST:$port by the deadline, see $log"
			return 1
		fi
		sleep 0.3
	done
}

_kafka_start_locked() {
	local root kdir props log pidf java pid t0 timeout
	root=$(at_root) || return 1
	kdir=$(_kafka_dir) || return 1
	props=$kdir/server.properties
	log=$kdir/kafka.log
	pidf=$kdir/kafka.pid
	timeout=${AUDITTRAIL_KAFKA_TIMEOUT:-90}
	t0=$(_svc_now)

	compgen -G "$kdir/jars/kafka_2.13-*.jar" >/dev/null || {
		_svc_err "kafka jars missing in $kdir/jars; run kafka_install first"
		return 1
	}
	java=$(_kafka_java) || {
		_svc_err "java 17+ not found; run kafka_install first"
		return 1
	}
	mkdir -p "$kdir/data" || return 1
	_svc_render "$root/deploy/kafka/server.properties" "$props" \
		"s#@KAFKA_LOG_DIRS@#$(_svc_sed_escape "$kdir/data")#g" || return 1
	cp -f "$root/deploy/kafka/log4j2.properties" "$kdir/log4j2.properties" || return 1

	if pid=$(_kafka_pid); then
		if _svc_port_open "$SVC_KAFKA_PORT" &&
			{ [[ ! -f $log ]] || grep -q 'Kafka Server started' "$log"; }; then
			_svc_log "kafka already running (pid $pid), reusing it"
			return 0
		fi
		_svc_log "kafka (pid $pid) is starting, waiting for it"
		_kafka_wait "$pid" "$log" "$timeout" || return 1
		_svc_log "kafka ready on $SVC_HOST:$SVC_KAFKA_PORT (pid $pid)"
		return 0
	fi
	_svc_check_ports_free kafka "$SVC_KAFKA_PORT $SVC_KAFKA_CONTROLLER_PORT" || return 1

	local jvm=(-cp "$kdir/jars/*" "-Dlog4j2.configurationFile=$kdir/log4j2.properties"
		-Djava.awt.headless=true)
	if [[ ! -f $kdir/data/meta.properties ]]; then
		_svc_log "formatting kafka storage $kdir/data (cluster id $SVC_KAFKA_CLUSTER_ID, --standalone)"
		if ! "$java" "${jvm[@]}" kafka.tools.StorageTool format --standalone \
			-t "$SVC_KAFKA_CLUSTER_ID" -c "$props" >"$kdir/format.log" 2>&1; then
			_svc_tail "$kdir/format.log"
			_svc_err "kafka storage format failed, see $kdir/format.log"
			return 1
		fi
	fi

	if [[ -f $log ]]; then
		mv -f "$log" "$log.1" || return 1
	fi
	_svc_log "starting kafka (log $log)"
	local heap
	read -r -a heap <<<"${AUDITTRAIL_KAFKA_HEAP:--Xms256m -Xmx1g}"
	# setsid: own session, survives the caller's terminal/process group.
	(
		cd "$kdir" &&
			exec setsid bash -c "$SVC_DAEMON_WRAPPER" "$pidf" \
				"$java" "${heap[@]}" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
				-XX:+ExitOnOutOfMemoryError "${jvm[@]}" \
				kafka.Kafka "$props" </dev/null >"$log" 2>&1 9>&-
	) &
	local i
	for ((i = 0; i < 50; i++)); do
		[[ -s $pidf ]] && break
		sleep 0.1
	done
	pid=$(head -n1 "$pidf" 2>/dev/null) || true
	[[ -n $pid ]] || {
		_svc_tail "$log"
		_svc_err "kafka did not start (no pid file $pidf)"
		return 1
	}
	_kafka_wait "$pid" "$log" "$timeout" || return 1
	_svc_log "kafka ready on $SVC_HOST:$SVC_KAFKA_PORT (pid $pid, $(($(_svc_now) - t0))s)"
}

# kafka_start: renders the config, formats the storage once, starts the broker
# in the background and waits until it is ready. Reuses a running broker of
# ours; fails when the ports belong to something else.
kafka_start() {
	local kdir
	kdir=$(_kafka_dir) || return 1
	_svc_locked "$kdir/.lock" _kafka_start_locked
}

_kafka_stop_locked() {
	local kdir
	kdir=$(_kafka_dir) || return 1
	_svc_stop_server kafka "$kdir" _kafka_pid
}

# kafka_stop: SIGTERM (30 s grace, then SIGKILL) and remove the pid file.
kafka_stop() {
	local kdir
	kdir=$(_kafka_dir) || return 1
	_svc_locked "$kdir/.lock" _kafka_stop_locked
}

# ---------------------------------------------------------------------------
# ClickHouse
# ---------------------------------------------------------------------------

# _ch_server prints the server command (one word per line): clickhouse-server
# (Debian: /usr/sbin, not always on a non-root PATH) or `clickhouse server`.
_ch_server() {
	local b
	for b in "$(command -v clickhouse-server 2>/dev/null)" /usr/sbin/clickhouse-server /usr/bin/clickhouse-server; do
		if [[ -n $b && -x $b ]]; then
			printf '%s\n' "$b"
			return 0
		fi
	done
	b=$(command -v clickhouse 2>/dev/null) || return 1
	printf '%s\nserver\n' "$b"
}

# _ch_client prints the client command (one word per line).
_ch_client() {
	local b
	b=$(command -v clickhouse-client 2>/dev/null)
	if [[ -n $b ]]; then
		printf '%s\n' "$b"
		return 0
	fi
	b=$(command -v clickhouse 2>/dev/null) || return 1
	printf '%s\nclient\n' "$b"
}

# _ch_query SQL: runs SQL against our server (5 s cap).
_ch_query() {
	local cli
	mapfile -t cli < <(_ch_client) || return 1
	((${#cli[@]})) || return 1
	timeout 5 "${cli[@]}" --host "$SVC_HOST" --port "$SVC_CH_TCP_PORT" -q "$1"
}

_ch_dir() {
	local h
	h=$(_svc_home) || return 1
	printf '%s/clickhouse\n' "$h"
}

# _ch_stop_system_service: the Debian package may have started its own
# server (as user clickhouse, /etc/clickhouse-server/config.xml) on 9000/8123.
_ch_stop_system_service() {
	local port pid cmd
	if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null 2>&1; then
		_svc_as_root systemctl disable --now clickhouse-server >/dev/null 2>&1 || true
	fi
	for port in "$SVC_CH_TCP_PORT" "$SVC_CH_HTTP_PORT"; do
		pid=$(_svc_port_owner "$port")
		[[ -n $pid ]] || continue
		cmd=$(_svc_cmdline "$pid" 2>/dev/null) || continue
		if [[ $cmd == *clickhouse* && $cmd == */etc/clickhouse-server/* ]]; then
			_svc_log "stopping the system clickhouse-server the package started (pid $pid)"
			_svc_as_root kill -TERM "$pid" 2>/dev/null || true
			local i
			for ((i = 0; i < 300; i++)); do
				_svc_alive "$pid" || break
				sleep 0.1
			done
		fi
	done
}

# clickhouse_install: apt-get install clickhouse-server clickhouse-client when
# the binaries are missing, without leaving the system service running.
clickhouse_install() {
	if _ch_server >/dev/null && _ch_client >/dev/null; then
		_svc_log "clickhouse already installed ($(head -n1 < <(_ch_server)))"
		return 0
	fi
	_svc_log "clickhouse not found, installing it"
	_svc_apt_install clickhouse-server clickhouse-client || return 1
	_ch_stop_system_service
	if ! _ch_server >/dev/null || ! _ch_client >/dev/null; then
		_svc_err "clickhouse binaries still missing after apt-get install"
		return 1
	fi
}

_ch_pid() {
	local cdir
	cdir=$(_ch_dir) || return 1
	_svc_find_pid "$cdir/clickhouse.pid" "$SVC_CH_TCP_PORT $SVC_CH_HTTP_PORT" \
		clickhouse "--config-file=$cdir/etc/config.xml"
}

# _ch_wait PID TIMEOUT: waits until `SELECT 1` works on the native port.
_ch_wait() {
	local pid=$1 timeout=$2 deadline cdir
	cdir=$(_ch_dir) || return 1
	deadline=$(($(_svc_now) + timeout))
	while :; do
		if ! _svc_alive "$pid"; then
			_svc_tail "$cdir/log/stdout.log" "$cdir/log/clickhouse-server.err.log"
			_svc_err "clickhouse (pid $pid) exited during startup, see $cdir/log/"
			return 1
		fi
		if _ch_query 'SELECT 1' >/dev/null 2>&1; then
			return 0
		fi
		if (($(_svc_now) >= deadline)); then
			_svc_tail "$cdir/log/stdout.log" "$cdir/log/clickhouse-server.err.log"
			_svc_err "clickhouse (pid $pid) not answering on $SVC_HOST:$SVC_CH_TCP_PORT after ${timeout}s"
			return 1
		fi
		sleep 0.3
	done
}

_ch_start_locked() {
	local root cdir pidf pid t0 timeout home_esc server
	root=$(at_root) || return 1
	cdir=$(_ch_dir) || return 1
	pidf=$cdir/clickhouse.pid
	timeout=${AUDITTRAIL_CH_TIMEOUT:-60}
	t0=$(_svc_now)

	mapfile -t server < <(_ch_server)
	((${#server[@]})) || {
		_svc_err "clickhouse-server not found; run clickhouse_install first"
		return 1
	}
	mkdir -p "$cdir"/{etc,data,tmp,user_files,format_schemas,log} || return 1
	home_esc=$(_svc_sed_escape "$cdir")
	_svc_render "$root/deploy/clickhouse/config.xml" "$cdir/etc/config.xml" "s#@CH_HOME@#$home_esc#g" || return 1
	_svc_render "$root/deploy/clickhouse/users.xml" "$cdir/etc/users.xml" "s#@CH_HOME@#$home_esc#g" || return 1

	if pid=$(_ch_pid); then
		if _ch_query 'SELECT 1' >/dev/null 2>&1; then
			_svc_log "clickhouse already running (pid $pid), reusing it"
			return 0
		fi
		_svc_log "clickhouse (pid $pid) is starting, waiting for it"
		_ch_wait "$pid" "$timeout" || return 1
		_svc_log "clickhouse ready on $SVC_HOST:$SVC_CH_TCP_PORT (pid $pid)"
		return 0
	fi
	if ! _svc_check_ports_free clickhouse "$SVC_CH_TCP_PORT $SVC_CH_HTTP_PORT"; then
		local owner
		owner=$(_svc_port_owner "$SVC_CH_TCP_PORT")
		if [[ -n $owner && "$(_svc_cmdline "$owner" 2>/dev/null)" == */etc/clickhouse-server/* ]]; then
			_svc_log "hint: that is the Debian system service; stop it with" \
				"'systemctl disable --now clickhouse-server' or 'service clickhouse-server stop'"
		fi
		return 1
	fi

	_svc_log "starting clickhouse (logs in $cdir/log/)"
	# Runs as the invoking user (root is fine: the data folder is ours).
	(
		cd "$cdir" &&
			exec setsid bash -c "$SVC_DAEMON_WRAPPER" "$pidf" \
				"${server[@]}" "--config-file=$cdir/etc/config.xml" \
				</dev/null >>"$cdir/log/stdout.log" 2>&1 9>&-
	) &
	local i
	for ((i = 0; i < 50; i++)); do
		[[ -s $pidf ]] && break
		sleep 0.1
	done
	pid=$(head -n1 "$pidf" 2>/dev/null) || true
	[[ -n $pid ]] || {
		_svc_err "clickhouse did not start (no pid file $pidf)"
		return 1
	}
	_ch_wait "$pid" "$timeout" || return 1
	_svc_log "clickhouse ready on $SVC_HOST:$SVC_CH_TCP_PORT (pid $pid, $(($(_svc_now) - t0))s)"
}

# clickhouse_start: renders config.xml/users.xml into
# $AUDITTRAIL_HOME/clickhouse/etc, starts clickhouse-server in the background
# and waits until it answers. Reuses a running server of ours; fails when the
# ports belong to something else.
clickhouse_start() {
	local cdir
	cdir=$(_ch_dir) || return 1
	_svc_locked "$cdir/.lock" _ch_start_locked
}

_ch_stop_locked() {
	local cdir
	cdir=$(_ch_dir) || return 1
	_svc_stop_server clickhouse "$cdir" _ch_pid
}

# clickhouse_stop: SIGTERM (30 s grace, then SIGKILL) and remove the pid file.
clickhouse_stop() {
	local cdir
	cdir=$(_ch_dir) || return 1
	_svc_locked "$cdir/.lock" _ch_stop_locked
}

# ---------------------------------------------------------------------------
# Both
# ---------------------------------------------------------------------------

# services_up: install (if needed) and start Kafka and ClickHouse, in parallel,
# then print versions and endpoints.
services_up() {
	local t0 kpid krc=0 crc=0 chv
	t0=$(_svc_now)
	kafka_install || return 1
	clickhouse_install || return 1
	kafka_start &
	kpid=$!
	clickhouse_start || crc=$?
	wait "$kpid" || krc=$?
	if ((krc != 0 || crc != 0)); then
		_svc_err "services up failed (kafka rc=$krc, clickhouse rc=$crc)"
		return 1
	fi
	chv=$(_ch_query 'SELECT version()' 2>/dev/null) || chv='?'
	_svc_log "kafka $(_kafka_version || echo ?)  PLAINTEXT $SVC_HOST:$SVC_KAFKA_PORT (controller $SVC_HOST:$SVC_KAFKA_CONTROLLER_PORT)"
	_svc_log "clickhouse $chv  native $SVC_HOST:$SVC_CH_TCP_PORT  http http://$SVC_HOST:$SVC_CH_HTTP_PORT"
	_svc_log "up in $(($(_svc_now) - t0))s (data: $(_svc_home))"
}

# services_down: stop both, in parallel (data is kept; remove $AUDITTRAIL_HOME
# to reset).
services_down() {
	local rc=0 kpid
	kafka_stop &
	kpid=$!
	clickhouse_stop || rc=1
	wait "$kpid" || rc=1
	return "$rc"
}

# services_status: one line per server; returns 0 when both run, 3 otherwise.
services_status() {
	local pid rc=0 v
	if pid=$(_kafka_pid 2>/dev/null); then
		if _svc_port_open "$SVC_KAFKA_PORT"; then
			_svc_log "kafka: running (pid $pid) $SVC_HOST:$SVC_KAFKA_PORT, version $(_kafka_version || echo ?)"
		else
			_svc_log "kafka: starting (pid $pid), port $SVC_KAFKA_PORT not open yet"
			rc=3
		fi
	else
		if _svc_port_open "$SVC_KAFKA_PORT"; then
			_svc_log "kafka: stopped (port $SVC_KAFKA_PORT is used by another process)"
		else
			_svc_log "kafka: stopped"
		fi
		rc=3
	fi
	if pid=$(_ch_pid 2>/dev/null); then
		if v=$(_ch_query 'SELECT version()' 2>/dev/null); then
			_svc_log "clickhouse: running (pid $pid) $SVC_HOST:$SVC_CH_TCP_PORT http $SVC_CH_HTTP_PORT, version $v"
		else
			_svc_log "clickhouse: starting (pid $pid), not answering yet"
			rc=3
		fi
	else
		if _svc_port_open "$SVC_CH_TCP_PORT"; then
			_svc_log "clickhouse: stopped (port $SVC_CH_TCP_PORT is used by another process)"
		else
			_svc_log "clickhouse: stopped"
		fi
		rc=3
	fi
	return "$rc"
}
