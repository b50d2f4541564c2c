#!/usr/bin/env bash
# stack.sh: the local stack on one host, everything under var/.
#
#   stack.sh run     foreground: start all, stream logs; Ctrl-C stops all
#   stack.sh up      start all in the background, print URLs and health
#   stack.sh down    stop the six services, then Redis and PostgreSQL
#   stack.sh status  what runs, and each health listener's answer
#
# Steps of up/run: install missing Debian packages (as root; otherwise the
# command to run is printed), start the project-local PostgreSQL and Redis,
# create the database, make the secret key (var/secret_key, kept), migrate,
# create the first admin once (credentials in var/admin.txt, printed once),
# start the services with ipc:// addresses under var/run.  The binaries are
# built by make before this script runs.  Environment settings:
#   SUB2API_PG_PORT (54329)  SUB2API_REDIS_PORT (63799)
#   SUB2API_GATEWAY_PORT (8080)  SUB2API_WEBUI_PORT (8081)
#   SUB2API_HEALTH_BASE (9100): health listeners on base+1 .. base+6
#   SUB2API_VAR (var): where data, logs, sockets and pid files go
set -u
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
VAR=${SUB2API_VAR:-$ROOT/var}
HEALTH_BASE=${SUB2API_HEALTH_BASE:-9100}
GW_PORT=${SUB2API_GATEWAY_PORT:-8080}
WEB_PORT=${SUB2API_WEBUI_PORT:-8081}
BIN=${BIN:-$ROOT/build/bin}
PG_PORT=${SUB2API_PG_PORT:-54329}
REDIS_PORT=${SUB2API_REDIS_PORT:-63799}
SERVICES="scheduler billing opsmon alerter webui gateway"

. compose/local/packages.sh
. compose/local/servers.sh

health_port() {
	case $1 in
	gateway) echo $((HEALTH_BASE + 1)) ;;
	scheduler) echo $((HEALTH_BASE + 2)) ;;
	billing) echo $((HEALTH_BASE + 3)) ;;
	opsmon) echo $((HEALTH_BASE + 4)) ;;
	alerter) echo $((HEALTH_BASE + 5)) ;;
	webui) echo $((HEALTH_BASE + 6)) ;;
	esac
}

svc_env() {
	export SUB2API_STATE_DIR=$VAR/run
	export SUB2API_DATABASE_URL="postgresql://postgres@127.0.0.1:$PG_PORT/sub2api"
	export SUB2API_REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
	export SUB2API_MIGRATIONS_DIR=$ROOT/migrations
	export SUB2API_GATEWAY_LISTEN_ADDR=0.0.0.0:$GW_PORT
	export SUB2API_WEBUI_LISTEN_ADDR=0.0.0.0:$WEB_PORT
	local s u
	for s in $SERVICES; do
		u=$(echo "$s" | tr a-z A-Z)
		export "SUB2API_${u}_HEALTH_ADDR=127.0.0.1:$(health_port "$s")"
	done
	if [ -z "${SUB2API_SECRET_KEY:-}" ]; then
		SUB2API_SECRET_KEY=$(cat "$VAR/secret_key")
		export SUB2API_SECRET_KEY
	fi
}

svc_pid() {
	local f=$VAR/run/$1.pid
	[ -f "$f" ] && srv_alive "$(cat "$f")" && cat "$f"
}

start_deps() {
	pkg_ensure $PKG_RUN || exit 1
	mkdir -p "$VAR/run" "$VAR/log"
	srv_pg_start "$VAR/pg" "$PG_PORT" || exit 1
	srv_redis_start "$VAR/redis" "$REDIS_PORT" || exit 1
	srv_pg_createdb "$PG_PORT" sub2api || exit 1
	if [ ! -s "$VAR/secret_key" ]; then
		(umask 077 && openssl rand -hex 32 >"$VAR/secret_key")
	fi
	svc_env
	"$BIN/sub2apictl" migrate || exit 1
	if [ ! -s "$VAR/admin.txt" ]; then
		local pw
		pw=$(openssl rand -base64 18 | tr -d '/+=' | cut -c1-20)
		if "$BIN/sub2apictl" user add --email admin@sub2api.local \
			--password "$pw" --role admin >/dev/null; then
			(umask 077 && printf 'email: admin@sub2api.local\npassword: %s\n' "$pw" >"$VAR/admin.txt")
			echo "first admin created:"
			cat "$VAR/admin.txt"
		fi
	fi
}

start_services() {
	local s
	svc_env
	for s in $SERVICES; do
		if [ -n "$(svc_pid "$s")" ]; then
			continue
		fi
		"$BIN/sub2api-$s" >>"$VAR/log/$s.log" 2>&1 &
		echo $! >"$VAR/run/$s.pid"
	done
}

wait_healthy() {
	local s port i ok
	for s in $SERVICES; do
		port=$(health_port "$s")
		ok=no
		for i in $(seq 1 100); do
			if curl -fsS -m 1 "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then
				ok=yes
				break
			fi
			[ -n "$(svc_pid "$s")" ] || break
			sleep 0.1
		done
		if [ $ok != yes ]; then
			echo "$s did not become healthy; last log lines:"
			tail -n 15 "$VAR/log/$s.log"
			return 1
		fi
	done
}

# Readiness follows within a few seconds (pings, first checks); wait for
# it so the status printed is the settled one.  Not fatal: status says why.
wait_ready() {
	local s port i
	for s in $SERVICES; do
		port=$(health_port "$s")
		for i in $(seq 1 150); do
			[ "$(curl -s -o /dev/null -m 1 -w '%{http_code}' "http://127.0.0.1:$port/readyz")" = 200 ] && break
			sleep 0.1
		done
	done
}

print_status() {
	local s port pid code ready
	printf '%-10s %-8s %-32s %s\n' service pid health ready
	for s in $SERVICES; do
		port=$(health_port "$s")
		pid=$(svc_pid "$s")
		code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$port/healthz")
		ready=$(curl -s -o /dev/null -m 6 -w '%{http_code}' "http://127.0.0.1:$port/readyz")
		printf '%-10s %-8s %-32s %s\n' "$s" "${pid:--}" \
			"http://127.0.0.1:$port/healthz $code" "$ready"
	done
	echo "gateway:  http://127.0.0.1:$GW_PORT"
	echo "web UI:   http://127.0.0.1:$WEB_PORT"
	echo "postgres: 127.0.0.1:$PG_PORT   redis: 127.0.0.1:$REDIS_PORT"
	[ -f "$VAR/admin.txt" ] && echo "first admin: credentials in $VAR/admin.txt"
}

stop_services() {
	local s pid i
	for s in $SERVICES; do
		pid=$(svc_pid "$s") || true
		[ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null
	done
	for s in $SERVICES; do
		pid=$(svc_pid "$s") || true
		[ -n "$pid" ] || continue
		for i in $(seq 1 100); do
			srv_alive "$pid" || break
			sleep 0.1
		done
		srv_alive "$pid" && kill -KILL "$pid" 2>/dev/null
		rm -f "$VAR/run/$s.pid"
	done
}

stop_all() {
	stop_services
	srv_redis_stop "$VAR/redis" "$REDIS_PORT"
	srv_pg_stop "$VAR/pg"
}

case ${1:-status} in
up)
	start_deps
	start_services
	wait_healthy || exit 1
	wait_ready
	print_status
	;;
run)
	start_deps
	start_services
	trap 'echo; echo stopping; stop_all; exit 0' INT TERM
	wait_healthy || { stop_all; exit 1; }
	wait_ready
	print_status
	echo "logs follow; Ctrl-C stops everything"
	tail -n 0 -F "$VAR"/log/*.log &
	wait
	;;
down)
	stop_all
	echo "stopped"
	;;
status)
	print_status
	;;
*)
	echo "usage: $0 run|up|down|status" >&2
	exit 2
	;;
esac
