#!/usr/bin/env bash
# Start a throw-away PostgreSQL server on a free loopback port for the serving tests.
#
#   eval "$(.ci/postgres.sh $$)"    # prints: export RECFORGE_TEST_POSTGRES_URL=postgresql://...
#
# Installs Debian's postgresql package when its binaries are missing (needs root and apt-get),
# runs initdb into a temporary folder and pg_ctl start as the postgres user (as the current user
# when not root), trust authentication on 127.0.0.1 only. A watchdog stops the server and removes
# the folder when the process given as $1 (the calling shell; default: the parent) exits.
# Diagnostics go to stderr; stdout is only the export line.
set -euo pipefail
CALLER=${1:-$PPID}

find_bin() {
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}
BIN=$(find_bin)
if [ -z "$BIN" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "postgres.sh: installing postgresql from Debian's packages" >&2
        apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
        BIN=$(find_bin)
    fi
fi
if [ -z "$BIN" ]; then
    echo "postgres.sh: no PostgreSQL binaries in /usr/lib/postgresql/*/bin and cannot install them" >&2
    exit 1
fi

DIR=$(mktemp -d /tmp/recforge-pg.XXXXXX)
RUN=()
if [ "$(id -u)" = 0 ]; then
    chown postgres: "$DIR"
    RUN=(runuser -u postgres --)
fi
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

"${RUN[@]}" "$BIN/initdb" -D "$DIR/data" -U postgres --auth=trust -E UTF8 >"$DIR/initdb.log" 2>&1 \
    || { cat "$DIR/initdb.log" >&2; exit 1; }
"${RUN[@]}" "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DIR -c fsync=on" start >&2 \
    || { cat "$DIR/server.log" >&2; exit 1; }
"${RUN[@]}" "$BIN/createdb" -h 127.0.0.1 -p "$PORT" -U postgres recforge_test >&2

# stop the server and remove its folder once the shell that started it is gone
nohup bash -c "while kill -0 $CALLER 2>/dev/null; do sleep 2; done
               ${RUN[*]} '$BIN/pg_ctl' -D '$DIR/data' -m fast stop >/dev/null 2>&1; rm -rf '$DIR'" \
    >/dev/null 2>&1 &
echo "postgres.sh: PostgreSQL $("$BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PORT (data in $DIR)" >&2
echo "export RECFORGE_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:$PORT/recforge_test"
