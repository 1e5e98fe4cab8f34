# shellcheck shell=bash
#
# scripts/lib/app.sh - build and run the product's own processes (ingest
# gateway, writer, read API, forwarder, sealer) in the background on this machine, next to the
# servers of scripts/lib/services.sh. Source it after services.sh.
#
#   app_build     go build the commands into $AUDITTRAIL_HOME/bin
#   app_secrets   create (once) and load $AUDITTRAIL_HOME/secrets.env:
#                 AUDITTRAIL_INGEST_TOKENS, AUDITTRAIL_JWT_SECRET and the
#                 checkpoints' key pair AUDITTRAIL_SIGNING_KEY and
#                 AUDITTRAIL_VERIFIER_KEYS, and the export manifests' own
#                 pair AUDITTRAIL_MANIFEST_SIGNING_KEY and
#                 AUDITTRAIL_MANIFEST_VERIFIER_KEYS, and the operator
#                 credential of the admin API AUDITTRAIL_ADMIN_TOKENS
#                 (added to an older file; needs app_build first); a value
#                 the operator exported wins over the file's
#   app_start     (re)start writer, ingest, api, forwarder and sealer; wait until ready
#                 (the api also serves the admin API on AUDITTRAIL_ADMIN_ADDR,
#                 loopback port 8085 by default; the writer archives expiring
#                 events into AUDITTRAIL_ARCHIVE_DIR, $AUDITTRAIL_HOME/archive
#                 by default)
#   app_stop      stop them by pid
#
# Logs: $AUDITTRAIL_HOME/log/<name>.log; pids: $AUDITTRAIL_HOME/run/<name>.pid

APP_NAMES=(writer ingest api forwarder sealer)
declare -A APP_PKG=([ingest]=producers/cmd/ingest [writer]=consumers/cmd/writer [api]=query-api/cmd/api
	[loadgen]=producers/cmd/loadgen [token]=query-api/cmd/token
	[forwarder]=consumers/cmd/forwarder [dlq]=consumers/cmd/dlq [sealer]=consumers/cmd/sealer
	[admin]=query-api/cmd/admin [verify]=query-api/cmd/verify)

# _app_listen NAME: the host:port NAME is told to listen on (same defaults
# as the binaries).
_app_listen() {
	case $1 in
	ingest) echo "${AUDITTRAIL_INGEST_ADDR:-127.0.0.1:8081}" ;;
	writer) echo "${AUDITTRAIL_WRITER_ADDR:-127.0.0.1:8082}" ;;
	api) echo "${AUDITTRAIL_API_ADDR:-127.0.0.1:8080}" ;;
	forwarder) echo "${AUDITTRAIL_FORWARDER_ADDR:-127.0.0.1:8083}" ;;
	sealer) echo "${AUDITTRAIL_SEALER_ADDR:-127.0.0.1:8084}" ;;
	admin) echo "${AUDITTRAIL_ADMIN_ADDR:-127.0.0.1:8085}" ;;
	esac
}

# app_addr NAME: the host:port NAME listens on. Told port 0 (the tests do,
# so that no other process can take the port first), a process binds one
# the kernel chooses and logs it ({"msg":"listening","listener":...,
# "addr":...}); this is the one its log names, empty until it is bound.
app_addr() {
	local addr log listener=http
	addr=$(_app_listen "$1")
	if [[ $addr == *:0 ]]; then
		log="$(_svc_home)/log/$1.log"
		[[ $1 == admin ]] && log="$(_svc_home)/log/api.log" listener=admin
		addr=$(sed -n 's/.*"msg":"listening",.*"listener":"'"$listener"'","addr":"\([^"]*\)".*/\1/p' "$log" 2>/dev/null | tail -n 1)
	fi
	echo "$addr"
}

_app_log() { printf '[app] %s\n' "$*" >&2; }

app_build() {
	local root home name
	root=$(at_root) || return 1
	home=$(_svc_home) || return 1
	mkdir -p "$home/bin"
	command -v go >/dev/null || { _app_log "ERROR: go is not on PATH"; return 1; }
	_app_log "building ${!APP_PKG[*]}"
	for name in "${!APP_PKG[@]}"; do
		(cd "$root" && go build -o "$home/bin/$name" "./${APP_PKG[$name]}") || return 1
	done
}

app_secrets() {
	local home f
	home=$(_svc_home) || return 1
	f="$home/secrets.env"
	if [[ ! -s $f ]]; then
		umask 077
		{
			printf 'AUDITTRAIL_INGEST_TOKENS=ingest_%s\n' "$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
			printf 'AUDITTRAIL_JWT_SECRET=%s\n' "$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')"
		} >"$f"
		_app_log "created $f"
	fi
	if ! grep -q '^AUDITTRAIL_SIGNING_KEY=' "$f"; then
		# The checkpoints' Ed25519 key pair (sealer -generate-key).
		[[ -x $home/bin/sealer ]] || { _app_log "ERROR: $home/bin/sealer missing: run app_build first"; return 1; }
		(umask 077 && "$home/bin/sealer" -generate-key "${AUDITTRAIL_LOG_ORIGIN:-audittrail.local}" >>"$f") || return 1
		_app_log "added the checkpoint signing key to $f"
	fi
	if ! grep -q '^AUDITTRAIL_MANIFEST_SIGNING_KEY=' "$f"; then
		# The export manifests' own key pair: the API signs with it and never
		# holds the checkpoints' key.
		[[ -x $home/bin/sealer ]] || { _app_log "ERROR: $home/bin/sealer missing: run app_build first"; return 1; }
		(umask 077 && "$home/bin/sealer" -generate-key "manifests.${AUDITTRAIL_LOG_ORIGIN:-audittrail.local}" |
			sed -e 's/^AUDITTRAIL_SIGNING_KEY=/AUDITTRAIL_MANIFEST_SIGNING_KEY=/' \
				-e 's/^AUDITTRAIL_VERIFIER_KEYS=/AUDITTRAIL_MANIFEST_VERIFIER_KEYS=/' >>"$f") || return 1
		_app_log "added the manifest signing key to $f"
	fi
	if ! grep -q '^AUDITTRAIL_ADMIN_TOKENS=' "$f"; then
		# The operator credential of the admin API (name:token): not a JWT,
		# and not derived from any other secret.
		(umask 077 && printf 'AUDITTRAIL_ADMIN_TOKENS=operator:admin_%s\n' "$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')" >>"$f")
		_app_log "added the admin API's operator token to $f"
	fi
	# Values the operator exported win over the generated file.
	local tokens=${AUDITTRAIL_INGEST_TOKENS-} secret=${AUDITTRAIL_JWT_SECRET-} admin=${AUDITTRAIL_ADMIN_TOKENS-}
	local skey=${AUDITTRAIL_SIGNING_KEY-} vkeys=${AUDITTRAIL_VERIFIER_KEYS-}
	local mskey=${AUDITTRAIL_MANIFEST_SIGNING_KEY-} mvkeys=${AUDITTRAIL_MANIFEST_VERIFIER_KEYS-}
	set -a
	# shellcheck disable=SC1090
	. "$f"
	set +a
	[[ -n $tokens ]] && export AUDITTRAIL_INGEST_TOKENS=$tokens
	[[ -n $secret ]] && export AUDITTRAIL_JWT_SECRET=$secret
	[[ -n $skey ]] && export AUDITTRAIL_SIGNING_KEY=$skey
	[[ -n $vkeys ]] && export AUDITTRAIL_VERIFIER_KEYS=$vkeys
	[[ -n $mskey ]] && export AUDITTRAIL_MANIFEST_SIGNING_KEY=$mskey
	[[ -n $mvkeys ]] && export AUDITTRAIL_MANIFEST_VERIFIER_KEYS=$mvkeys
	[[ -n $admin ]] && export AUDITTRAIL_ADMIN_TOKENS=$admin
	return 0
}

_app_pid() {
	local f pid
	f="$(_svc_home)/run/$1.pid"
	[[ -s $f ]] || return 1
	pid=$(<"$f")
	[[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null && [[ $(readlink "/proc/$pid/exe" 2>/dev/null) == "$(_svc_home)/bin/$1"* ]] || return 1
	echo "$pid"
}

# _app_up NAME: NAME's process is running or still starting: its pid file
# is not written yet, or names a live process (the wrapper that writes it
# is a shell until it execs the binary, which _app_pid would not accept).
_app_up() {
	local f pid
	f="$(_svc_home)/run/$1.pid"
	[[ -s $f ]] || return 0
	pid=$(<"$f")
	[[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null
}

app_stop() {
	local name pid
	for name in sealer forwarder api ingest writer; do
		if pid=$(_app_pid "$name"); then
			_app_log "stopping $name (pid $pid)"
			_svc_stop_pid "$name" "$pid" || return 1
		fi
		rm -f "$(_svc_home)/run/$name.pid"
	done
}

app_start() {
	local home name deadline
	home=$(_svc_home) || return 1
	mkdir -p "$home/run" "$home/log"
	app_stop || return 1
	# A static member id lets a restarted writer take its partitions back at once.
	export AUDITTRAIL_WRITER_INSTANCE_ID=${AUDITTRAIL_WRITER_INSTANCE_ID:-writer-1}
	# The admin API on its own loopback listener (the admin command calls
	# it), and the archive of expiring events.
	AUDITTRAIL_ADMIN_ADDR=$(_app_listen admin)
	AUDITTRAIL_ARCHIVE_DIR=${AUDITTRAIL_ARCHIVE_DIR:-$(cd "$home" && pwd)/archive}
	export AUDITTRAIL_ADMIN_ADDR AUDITTRAIL_ARCHIVE_DIR
	for name in "${APP_NAMES[@]}"; do
		_app_log "starting $name (log $home/log/$name.log)"
		: >"$home/log/$name.log" # emptied now, so app_addr never reads the last run's address
		nohup setsid bash -c "$SVC_DAEMON_WRAPPER" "$home/run/$name.pid" "$home/bin/$name" \
			>>"$home/log/$name.log" 2>&1 </dev/null &
	done
	deadline=$(($(date +%s) + 60))
	for name in "${APP_NAMES[@]}"; do
		until curl -fsS "http://$(app_addr "$name")/readyz" >/dev/null 2>&1; do
			if (($(date +%s) > deadline)) || ! _app_up "$name"; then
				_app_log "ERROR: $name did not become ready; last log lines:"
				tail -n 20 "$home/log/$name.log" >&2
				return 1
			fi
			sleep 0.2
		done
		_app_log "$name ready on $(app_addr "$name")"
	done
	curl -fsS "http://$(app_addr admin)/healthz" >/dev/null || { _app_log "ERROR: the admin API does not answer on $(app_addr admin)"; return 1; }
	AUDITTRAIL_ADMIN_URL="http://$(app_addr admin)"
	export AUDITTRAIL_ADMIN_URL
	_app_log "admin API on $(app_addr admin)"
}
