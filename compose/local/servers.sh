# servers.sh: start and stop the project-local PostgreSQL and Redis.
#
# Sourced by compose/local/stack.sh (the local stack, data under var/) and
# tests/run.sh (the test servers, data under var/test/).  Everything is
# idempotent: a server that already answers is left alone; a stale
# postmaster.pid or Redis pid file left by a kill -9 is removed before a
# start.  As root, PostgreSQL runs as the "postgres" user (it refuses
# root); otherwise as the caller.

# srv_alive PID: the process exists and is not a zombie (in containers
# whose init does not reap, a killed process lingers as a zombie and
# kill -0 still succeeds).
srv_alive() {
	local st
	[ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null || return 1
	st=$(awk '/^State:/ {print $2}' "/proc/$1/status" 2>/dev/null)
	[ "$st" != Z ]
}

PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}

srv_as_pg() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

# srv_pg_dir DIR: where the cluster for DIR really lives.  As root the
# server runs as "postgres", which cannot reach a checkout under a private
# home (/root is 0700); then the cluster goes to /var/tmp/sub2api-pg-<hash>
# and DIR/location records where.
srv_pg_dir() {
	local dir=$1 alt
	mkdir -p "$dir"
	if [ "$(id -u)" -ne 0 ]; then
		echo "$dir"
		return
	fi
	id postgres >/dev/null 2>&1 || useradd -r -M -d /var/lib/postgresql postgres
	chown postgres "$dir"
	if runuser -u postgres -- test -w "$dir" 2>/dev/null; then
		echo "$dir"
		return
	fi
	alt=/var/tmp/sub2api-pg-$(echo "$dir" | md5sum | cut -c1-12)
	mkdir -p "$alt"
	chown postgres "$alt"
	chmod 0700 "$alt"
	echo "$alt" >"$dir/location"
	echo "$alt"
}

# srv_pg_start DIR PORT: initialises DIR on first use, starts the server
# listening on 127.0.0.1:PORT (socket in DIR), trusts local connections.
srv_pg_start() {
	local dir port=$2 data
	dir=$(srv_pg_dir "$1")
	data=$dir/data
	if srv_as_pg "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port"; then
		return 0
	fi
	if [ ! -f "$data/PG_VERSION" ]; then
		rm -rf "$data"
		srv_as_pg "$PG_BIN/initdb" -D "$data" -U postgres --auth=trust \
			-E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || {
			cat "$dir/initdb.log"
			return 1
		}
	fi
	# A postmaster.pid whose process is gone is a leftover of a kill.
	if [ -f "$data/postmaster.pid" ]; then
		local pid
		pid=$(head -n 1 "$data/postmaster.pid")
		if ! srv_alive "$pid"; then
			rm -f "$data/postmaster.pid"
		fi
	fi
	# So is a socket lock file whose owner is gone.
	local lock=$dir/.s.PGSQL.$port.lock
	if [ -f "$lock" ] && ! srv_alive "$(head -n 1 "$lock")"; then
		rm -f "$lock" "$dir/.s.PGSQL.$port"
	fi
	srv_as_pg "$PG_BIN/pg_ctl" -D "$data" -l "$dir/postgres.log" -w -t 60 \
		-o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=${PG_FSYNC:-on} -c max_connections=200" \
		start >/dev/null || {
		tail -n 20 "$dir/postgres.log"
		return 1
	}
}

srv_pg_stop() {
	local data
	data=$(srv_pg_dir "$1")/data
	[ -f "$data/postmaster.pid" ] || return 0
	srv_as_pg "$PG_BIN/pg_ctl" -D "$data" -m fast -w -t 30 stop >/dev/null 2>&1 || true
}

# srv_pg_createdb PORT NAME: creates database NAME when missing.
srv_pg_createdb() {
	local port=$1 name=$2
	if ! psql -h 127.0.0.1 -p "$port" -U postgres -qAtc \
		"SELECT 1 FROM pg_database WHERE datname='$name'" postgres | grep -q 1; then
		psql -h 127.0.0.1 -p "$port" -U postgres -qc "CREATE DATABASE $name" postgres >/dev/null
	fi
}

# srv_redis_start DIR PORT: a Redis with no persistence on 127.0.0.1:PORT.
srv_redis_start() {
	local dir=$1 port=$2
	mkdir -p "$dir"
	if redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null | grep -q PONG; then
		return 0
	fi
	if [ -f "$dir/redis.pid" ] && ! srv_alive "$(cat "$dir/redis.pid")"; then
		rm -f "$dir/redis.pid"
	fi
	redis-server --bind 127.0.0.1 --port "$port" --save "" --appendonly no \
		--daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" \
		--dir "$dir" >/dev/null || return 1
	local i
	for i in $(seq 1 100); do
		redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null | grep -q PONG && return 0
		sleep 0.05
	done
	echo "redis did not start on port $port" >&2
	return 1
}

srv_redis_stop() {
	local dir=$1 port=$2
	redis-cli -h 127.0.0.1 -p "$port" shutdown nosave >/dev/null 2>&1 || true
	rm -f "$dir/redis.pid"
}
