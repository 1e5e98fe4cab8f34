# shellcheck shell=bash
#
# scripts/lib/cluster.sh - a local three-node Kafka 4.1 cluster on loopback,
# next to (and independent of) the single node of scripts/lib/services.sh.
# scripts/drill-cluster runs its multi-node drill on it.
#
#   node  broker (PLAINTEXT)   controller
#   1     127.0.0.1:19092      127.0.0.1:19093
#   2     127.0.0.1:19094      127.0.0.1:19095
#   3     127.0.0.1:19096      127.0.0.1:19097
#
# Every node is broker and controller (static quorum of three voters);
# topics default to replication factor 3 with min.insync.replicas=2
# (deploy/kafka/cluster-local/node{1,2,3}.properties). The nodes use the
# broker jars of kafka_install ($AUDITTRAIL_HOME/kafka/jars) and keep their
# files in $AUDITTRAIL_HOME/kafka-cluster/node<N>/:
#   server.properties   rendered template    data/     KRaft metadata + logs
#   kafka.pid           pid of the node      kafka.log console log
#
# Source it (bash only) and call: cluster_install, cluster_start [N...],
# cluster_stop [N...], cluster_kill N, cluster_status, cluster_running N,
# cluster_brokers, cluster_reset. Without N a function acts on all three
# nodes. Functions print progress to stderr prefixed with "[cluster]", return
# non-zero on failure and never call exit.
#
# Knobs (environment): AUDITTRAIL_HOME (data folder), AUDITTRAIL_KAFKA_TIMEOUT
# (seconds to wait for a node, default 90). Each node's JVM heap is fixed at
# -Xms128m -Xmx384m: three nodes fit next to everything else on a small
# machine.

# shellcheck source-path=SCRIPTDIR source=services.sh
. "$(dirname "${BASH_SOURCE[0]}")/services.sh"

CLUSTER_NODES=(1 2 3)
# Fixed KRaft cluster id (base64url of "audittrail-clstr", 16 bytes).
CLUSTER_ID=YXVkaXR0cmFpbC1jbHN0cg
CLUSTER_HEAP=(-Xms128m -Xmx384m)

_cl_log() { printf '[cluster] %s\n' "$*" >&2; }
_cl_err() { printf '[cluster] ERROR: %s\n' "$*" >&2; return 1; }

# cluster_broker_port N / cluster_controller_port N print node N's ports.
cluster_broker_port() { printf '%d\n' $((19090 + 2 * $1)); }
cluster_controller_port() { printf '%d\n' $((19091 + 2 * $1)); }

# cluster_brokers prints the bootstrap list of all three brokers.
cluster_brokers() {
	local n out=()
	for n in "${CLUSTER_NODES[@]}"; do out+=("$SVC_HOST:$(cluster_broker_port "$n")"); done
	(
		IFS=,
		printf '%s\n' "${out[*]}"
	)
}

_cl_dir() {
	local h
	h=$(_svc_home) || return 1
	printf '%s/kafka-cluster\n' "$h"
}

_cl_check_node() {
	[[ $1 =~ ^[123]$ ]] || _cl_err "unknown node '$1' (nodes are 1, 2 and 3)"
}

# _cl_nodes N...: the given nodes, or all three.
_cl_nodes() {
	if (($# == 0)); then
		printf '%s\n' "${CLUSTER_NODES[@]}"
		return 0
	fi
	local n
	for n in "$@"; do
		_cl_check_node "$n" || return 1
		printf '%s\n' "$n"
	done
}

# _cl_pid N prints the pid of our running node N.
_cl_pid() {
	local d
	d=$(_cl_dir) || return 1
	_svc_find_pid "$d/node$1/kafka.pid" "$(cluster_broker_port "$1") $(cluster_controller_port "$1")" \
		kafka.Kafka "$d/node$1/server.properties"
}

# cluster_running N: node N is ours, alive and its broker port accepts
# connections.
cluster_running() {
	_cl_pid "$1" >/dev/null 2>&1 && _svc_port_open "$(cluster_broker_port "$1")"
}

# cluster_install: the broker jars and Java, shared with the single node.
cluster_install() { kafka_install; }

# _cl_prepare N: renders node N's properties and formats its storage once.
_cl_prepare() {
	local n=$1 root d props java
	root=$(at_root) || return 1
	d=$(_cl_dir)/node$n || return 1
	props=$d/server.properties
	mkdir -p "$d/data" || return 1
	_svc_render "$root/deploy/kafka/cluster-local/node$n.properties" "$props" \
		"s#@KAFKA_LOG_DIRS@#$(_svc_sed_escape "$d/data")#g" || return 1
	cp -f "$root/deploy/kafka/log4j2.properties" "$d/log4j2.properties" || return 1
	[[ -f $d/data/meta.properties ]] && return 0
	java=$(_kafka_java) || {
		_cl_err "java 17+ not found; run cluster_install first"
		return 1
	}
	_cl_log "formatting node $n storage $d/data (cluster id $CLUSTER_ID, static quorum)"
	if ! "$java" -cp "$(_kafka_dir)/jars/*" "-Dlog4j2.configurationFile=$d/log4j2.properties" \
		kafka.tools.StorageTool format -t "$CLUSTER_ID" -c "$props" >"$d/format.log" 2>&1; then
		_svc_tail "$d/format.log"
		_cl_err "node $n storage format failed, see $d/format.log"
		return 1
	fi
}

# _cl_launch N: starts node N in the background (its own session); prints
# its pid.
_cl_launch() {
	local n=$1 d java log pidf pid i
	d=$(_cl_dir)/node$n || return 1
	java=$(_kafka_java) || return 1
	log=$d/kafka.log
	pidf=$d/kafka.pid
	rm -f "$pidf"
	if [[ -f $log ]]; then
		mv -f "$log" "$log.1" || return 1
	fi
	(
		cd "$d" &&
			exec setsid bash -c "$SVC_DAEMON_WRAPPER" "$pidf" \
				"$java" "${CLUSTER_HEAP[@]}" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
				-XX:+ExitOnOutOfMemoryError -cp "$(_kafka_dir)/jars/*" \
				"-Dlog4j2.configurationFile=$d/log4j2.properties" -Djava.awt.headless=true \
				kafka.Kafka "$d/server.properties" </dev/null >"$log" 2>&1 9>&-
	) &
	for ((i = 0; i < 50; i++)); do
		[[ -s $pidf ]] && break
		sleep 0.1
	done
	pid=$(head -n1 "$pidf" 2>/dev/null) || true
	[[ -n $pid ]] || {
		_svc_tail "$log"
		_cl_err "node $n did not start (no pid file $pidf)"
		return 1
	}
	printf '%s\n' "$pid"
}

# _cl_wait N PID DEADLINE: waits until node N's broker port is open and its
# log says "Kafka Server started".
_cl_wait() {
	local d
	d=$(_cl_dir)/node$1 || return 1
	_kafka_wait_node "$2" "$d/kafka.log" "$(cluster_broker_port "$1")" "$3" "node $1"
}

_cl_start_locked() {
	local n t0 deadline pid d
	local -a nodes pids=()
	t0=$(_svc_now)
	deadline=$((t0 + ${AUDITTRAIL_KAFKA_TIMEOUT:-90}))
	mapfile -t nodes < <(_cl_nodes "$@") || return 1
	((${#nodes[@]})) || return 1
	compgen -G "$(_kafka_dir)/jars/kafka_2.13-*.jar" >/dev/null || {
		_cl_err "kafka jars missing in $(_kafka_dir)/jars; run cluster_install first"
		return 1
	}
	for n in "${nodes[@]}"; do
		_cl_prepare "$n" || return 1
	done
	# Launch every node that is not running, then wait for all of them: a
	# node finishes starting only once a majority of the quorum is up.
	for n in "${nodes[@]}"; do
		d=$(_cl_dir)/node$n
		if pid=$(_cl_pid "$n"); then
			_cl_log "node $n already running (pid $pid), reusing it"
		else
			_svc_check_ports_free "node $n" "$(cluster_broker_port "$n") $(cluster_controller_port "$n")" || return 1
			pid=$(_cl_launch "$n") || return 1
			_cl_log "started node $n (pid $pid, log $d/kafka.log)"
		fi
		pids+=("$pid")
	done
	local i
	for i in "${!nodes[@]}"; do
		_cl_wait "${nodes[$i]}" "${pids[$i]}" "$deadline" || return 1
	done
	_cl_log "nodes ${nodes[*]} ready ($(($(_svc_now) - t0))s); brokers $(cluster_brokers)"
}

# cluster_start [N...]: renders each node's config, formats its storage once,
# starts the nodes that are not running and waits until all are ready. A node
# of ours that already runs is reused; a port held by anything else fails.
cluster_start() {
	local d
	d=$(_cl_dir) || return 1
	_svc_locked "$d/.lock" _cl_start_locked "$@"
}

_cl_stop_locked() {
	local n pid others=0 up lonely_since='' deadline
	local -a nodes
	local -A stopping=()
	mapfile -t nodes < <(_cl_nodes "$@") || return 1
	((${#nodes[@]})) || return 1
	for n in "${CLUSTER_NODES[@]}"; do
		[[ " ${nodes[*]} " == *" $n "* ]] && continue
		_cl_pid "$n" >/dev/null 2>&1 && others=$((others + 1))
	done
	# SIGTERM to all at once: each node's broker asks the controller quorum
	# to approve its controlled shutdown while the quorum is still there.
	for n in "${nodes[@]}"; do
		if ! pid=$(_cl_pid "$n" 2>/dev/null); then
			rm -f "$(_cl_dir)/node$n/kafka.pid"
			_cl_log "node $n not running"
			continue
		fi
		_cl_log "stopping node $n (pid $pid)"
		kill -TERM "$pid" 2>/dev/null || true
		stopping[$n]=$pid
	done
	deadline=$(($(_svc_now) + 30))
	while ((${#stopping[@]})); do
		for n in "${!stopping[@]}"; do
			if ! _svc_alive "${stopping[$n]}"; then
				unset "stopping[$n]"
				rm -f "$(_cl_dir)/node$n/kafka.pid"
			fi
		done
		((${#stopping[@]})) || break
		# A node left without a majority of the three voters cannot get its
		# shutdown approved and would wait for minutes: after 5 s, kill it.
		up=$((others + ${#stopping[@]}))
		if ((up < 2)); then
			lonely_since=${lonely_since:-$(_svc_now)}
		fi
		if { [[ -n $lonely_since ]] && (($(_svc_now) - lonely_since >= 5)); } || (($(_svc_now) >= deadline)); then
			for n in "${!stopping[@]}"; do
				_cl_log "node $n (pid ${stopping[$n]}) cannot finish its controlled shutdown (no controller quorum left), sending SIGKILL"
				kill -KILL "${stopping[$n]}" 2>/dev/null || true
			done
			lonely_since=
			deadline=$(($(_svc_now) + 10))
		fi
		sleep 0.3
	done
	_cl_log "nodes ${nodes[*]} stopped"
}

# cluster_stop [N...]: SIGTERM to each node at once; data is kept. A node
# that is not running is not an error. A node that can no longer reach a
# majority of the controllers (the others stopped first) is SIGKILLed after
# 5 s, any node after 30 s.
cluster_stop() {
	local d
	d=$(_cl_dir) || return 1
	_svc_locked "$d/.lock" _cl_stop_locked "$@"
}

# cluster_kill N: SIGKILL node N (a crash, for drills) and wait until it is
# gone.
cluster_kill() {
	local pid i
	_cl_check_node "${1:-}" || return 1
	pid=$(_cl_pid "$1") || {
		_cl_err "node $1 is not running"
		return 1
	}
	kill -KILL "$pid" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		_svc_alive "$pid" || {
			_cl_log "node $1 (pid $pid) killed"
			return 0
		}
		sleep 0.1
	done
	_cl_err "node $1 (pid $pid) survived SIGKILL"
}

# cluster_status: one line per node; returns 0 when all three run, 3
# otherwise.
cluster_status() {
	local n pid rc=0
	for n in "${CLUSTER_NODES[@]}"; do
		if pid=$(_cl_pid "$n" 2>/dev/null) && _svc_port_open "$(cluster_broker_port "$n")"; then
			_cl_log "node $n: running (pid $pid) $SVC_HOST:$(cluster_broker_port "$n")"
		elif [[ -n ${pid:-} ]]; then
			_cl_log "node $n: starting (pid $pid)"
			rc=3
		else
			_cl_log "node $n: stopped"
			rc=3
		fi
		pid=
	done
	return "$rc"
}

# cluster_reset: stops the nodes and removes their data (topics, groups,
# KRaft metadata); the next cluster_start formats fresh storage.
cluster_reset() {
	local d
	d=$(_cl_dir) || return 1
	cluster_stop 1 2 3 || return 1
	rm -rf "$d"/node1 "$d"/node2 "$d"/node3
	_cl_log "data removed ($d)"
}
