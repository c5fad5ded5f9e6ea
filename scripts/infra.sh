#!/usr/bin/env bash
# Makes sure the three servers the test suite talks to answer on loopback:
# PostgreSQL 127.0.0.1:5432 (user postgres, trust), Redis 127.0.0.1:6379 and
# RabbitMQ 127.0.0.1:5672 (guest/guest, >= 3.10).
#
# For each server: check it with its own protocol; if it does not answer, start
# it when installed; when it is not installed and we are root on Debian, install
# it with apt-get first. A server that already answers is never stopped,
# restarted or reconfigured. Quiet when all is well: one line per server.
# Exits non-zero naming every server that still does not answer.
#
# Environment:
#   OMNI_INFRA_DEADLINE   seconds to wait for a server after starting it (default 90;
#                         RabbitMQ alone takes 10-20 s to boot)
#   OMNI_INFRA_NO_START=1 only check, never start or install anything
#   OMNI_INFRA_NO_INSTALL=1  start what is installed, never run apt-get
#   OMNI_PG_PORT / OMNI_REDIS_PORT / OMNI_AMQP_PORT  ports to check (defaults
#                         5432 / 6379 / 5672); meant for testing this script
set -euo pipefail

readonly HOST=127.0.0.1
readonly PG_PORT=${OMNI_PG_PORT:-5432}
readonly REDIS_PORT=${OMNI_REDIS_PORT:-6379}
readonly AMQP_PORT=${OMNI_AMQP_PORT:-5672}
readonly DEADLINE=${OMNI_INFRA_DEADLINE:-90}
# Quorum-queue dead-lettering (x-dead-letter-strategy=at-least-once) needs 3.10.
readonly RABBITMQ_MIN_VERSION=3.10.0
# Logs of servers this script starts itself; Redis keeps nothing else on disk.
readonly STATE_DIR=${OMNI_INFRA_STATE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/omni-infra}

SCRIPT_NAME=$(basename "$0")
readonly SCRIPT_NAME

say() { printf '%-9s %s\n' "$1" "$2"; }
note() { printf '%s: %s\n' "$SCRIPT_NAME" "$*" >&2; }

is_root() { [[ $(id -u) -eq 0 ]]; }
is_debian() { [[ -f /etc/debian_version ]] && command -v apt-get >/dev/null; }
may_start() { [[ ${OMNI_INFRA_NO_START:-0} != 1 ]]; }
may_install() { may_start && [[ ${OMNI_INFRA_NO_INSTALL:-0} != 1 ]] && is_root && is_debian; }

# Runs "$@" until it succeeds or DEADLINE seconds have passed.
wait_for() {
    local what=$1
    shift
    local until=$((SECONDS + DEADLINE))
    until "$@"; do
        if ((SECONDS >= until)); then
            note "$what did not answer within ${DEADLINE}s"
            return 1
        fi
        sleep 1
    done
}

version_at_least() {
    local have=$1 want=$2
    [[ $(printf '%s\n%s\n' "$want" "$have" | sort -V | head -n1) == "$want" ]]
}

# ---------------------------------------------------------------- PostgreSQL

pg_installed() { command -v pg_ctlcluster >/dev/null && compgen -G '/etc/postgresql/*/main' >/dev/null; }

# The newest installed major version; Debian keeps one directory per major.
pg_major() { find /etc/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -V | tail -n1; }

pg_ready() { command -v pg_isready >/dev/null && pg_isready -q -h "$HOST" -p "$PG_PORT" -t 2; }

# A real query as the user the tests connect as, not just an open port.
pg_query() { psql -X -q -w -h "$HOST" -p "$PG_PORT" -U postgres -d postgres -Atc "$1" 2>&1; }

pg_answers() { pg_ready && pg_query 'select 1' >/dev/null; }

pg_start() {
    # The cluster listens where its postgresql.conf says; starting it cannot
    # make it answer on another port, and would start a second copy's worth of
    # surprise for whoever runs this with OMNI_PG_PORT set.
    if [[ $PG_PORT != 5432 ]]; then
        note "not starting PostgreSQL: OMNI_PG_PORT=$PG_PORT is not the cluster's port"
        return 1
    fi
    # As root this hands over to the postgres user itself; --skip-systemctl-redirect
    # because there is no systemd in containers and CI machines.
    pg_ctlcluster --skip-systemctl-redirect "$(pg_major)" main start
}

# A fresh Debian cluster uses peer/scram on loopback; the tests connect as
# postgres without a password, so put trust lines for loopback first. Only done
# on a cluster this script installed: an existing cluster's auth is its owner's.
pg_trust_loopback() {
    local hba
    hba=/etc/postgresql/$(pg_major)/main/pg_hba.conf
    if ! grep -Eq '^host[[:space:]]+all[[:space:]]+all[[:space:]]+127\.0\.0\.1/32[[:space:]]+trust' "$hba"; then
        local tmp
        tmp=$(mktemp)
        {
            echo '# omni scripts/infra.sh: tests connect as postgres over loopback without a password'
            echo 'host all all 127.0.0.1/32 trust'
            echo 'host all all ::1/128 trust'
            cat "$hba"
        } >"$tmp"
        cat "$tmp" >"$hba"
        rm -f "$tmp"
        # A reload re-reads pg_hba.conf without dropping connections.
        pg_ctlcluster --skip-systemctl-redirect "$(pg_major)" main reload
    fi
}

# ---------------------------------------------------------------------- Redis

redis_installed() { command -v redis-server >/dev/null && command -v redis-cli >/dev/null; }

redis_answers() { [[ $(redis-cli -h "$HOST" -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]]; }

redis_start() {
    mkdir -p "$STATE_DIR"
    # Nothing on disk (--save "" --appendonly no): tests rebuild what they need,
    # and the reservation store must cope with a lost Redis anyway.
    redis-server --daemonize yes --bind "$HOST" --port "$REDIS_PORT" --save "" --appendonly no \
        --dir "$STATE_DIR" --logfile "$STATE_DIR/redis-$REDIS_PORT.log" \
        --pidfile "$STATE_DIR/redis-$REDIS_PORT.pid"
}

redis_info() { redis-cli -h "$HOST" -p "$REDIS_PORT" "$@" 2>/dev/null | tr -d '\r'; }

# ------------------------------------------------------------------- RabbitMQ

rabbitmq_installed() { command -v rabbitmq-server >/dev/null; }

# Speaks AMQP 0-9-1 to the port: sends the protocol header and reads the
# Connection.Start frame, which carries the broker's version among its server
# properties. Prints the version; fails if no Connection.Start comes back.
# Unlike `rabbitmq-diagnostics ping` this needs no Erlang cookie, so it works
# as any user, and it checks what clients actually see.
amqp_probe() {
    python3 - "$HOST" "$AMQP_PORT" <<'PY'
import re, socket, struct, sys

host, port = sys.argv[1], int(sys.argv[2])
try:
    with socket.create_connection((host, port), timeout=3) as s:
        s.settimeout(3)
        s.sendall(b"AMQP\x00\x00\x09\x01")
        buf = b""
        while len(buf) < 7 or len(buf) < 8 + struct.unpack(">I", buf[3:7])[0]:
            chunk = s.recv(4096)
            if not chunk:
                break
            buf += chunk
except OSError:
    sys.exit(1)
# Frame type 1 (method) on channel 0 carrying class 10 method 10 = Connection.Start.
if len(buf) < 11 or buf[0] != 1 or buf[7:11] != b"\x00\x0a\x00\x0a":
    sys.exit(1)
m = re.search(rb"version" + rb"S" + rb"(.{4})", buf, re.S)
version = "unknown"
if m:
    n = struct.unpack(">I", m.group(1))[0]
    start = m.end()
    version = buf[start:start + n].decode("ascii", "replace")
print(version)
PY
}

rabbitmq_answers() { amqp_probe >/dev/null; }

rabbitmq_start() {
    if [[ $AMQP_PORT != 5672 ]]; then
        note "not starting RabbitMQ: OMNI_AMQP_PORT=$AMQP_PORT is not the broker's port"
        return 1
    fi
    # -detached returns at once; the broker needs 10-20 s before it accepts
    # connections, which wait_for covers.
    rabbitmq-server -detached
}

# -------------------------------------------------------------------- driving

failed=()
missing=()
installed_now=()

# Installs every missing server in one apt-get run (apt-get update is slow).
install_missing() {
    local pkgs=()
    pg_answers || pg_installed || pkgs+=(postgresql)
    redis_answers || redis_installed || pkgs+=(redis-server)
    rabbitmq_answers || rabbitmq_installed || pkgs+=(rabbitmq-server)
    ((${#pkgs[@]})) || return 0
    if ! may_install; then
        return 0
    fi
    note "installing ${pkgs[*]} with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    if apt-get update -qq && apt-get install -y -qq "${pkgs[@]}" >/dev/null; then
        installed_now+=("${pkgs[@]}")
    else
        note "apt-get install ${pkgs[*]} failed"
    fi
}

# ensure NAME PACKAGE ANSWERS START INSTALLED: the generic path (Redis, RabbitMQ).
ensure() {
    local name=$1 package=$2 answers=$3 start=$4 installed=$5
    "$answers" && return 0
    if ! "$installed"; then
        missing+=("$name (Debian package $package)")
        return 1
    fi
    if ! may_start; then
        return 1
    fi
    note "$name does not answer; starting it"
    if ! "$start"; then
        note "starting $name failed"
        return 1
    fi
    wait_for "$name" "$answers"
}

# PostgreSQL has its own path: "up but refusing the login" is a state of its own.
ensure_postgres() {
    if ! command -v psql >/dev/null || ! command -v pg_isready >/dev/null; then
        missing+=("psql and pg_isready (Debian package postgresql-client)")
        return 1
    fi
    pg_answers && return 0
    if ! pg_ready; then
        if ! pg_installed; then
            missing+=("postgres (Debian package postgresql)")
            return 1
        fi
        may_start || return 1
        note "postgres does not answer; starting it"
        pg_start || {
            note "starting postgres failed"
            return 1
        }
        wait_for postgres pg_ready || return 1
    fi
    pg_answers && return 0
    # Up, but the login is refused: fix it only on a cluster installed just now.
    if [[ " ${installed_now[*]} " == *" postgresql "* ]]; then
        pg_trust_loopback && wait_for postgres pg_answers
        return
    fi
    note "PostgreSQL at $HOST:$PG_PORT is up but refuses 'psql -U postgres': $(pg_query 'select 1' | head -n1)"
    note "  the tests need 'host all all 127.0.0.1/32 trust' at the top of pg_hba.conf"
    return 1
}

command -v python3 >/dev/null || missing+=("python3 (Debian package python3), used for the AMQP check")

install_missing

# PostgreSQL
if ensure_postgres; then
    say postgres "ok  PostgreSQL $(pg_query 'show server_version') at $HOST:$PG_PORT"
else
    failed+=(postgres)
fi

# Redis
if ensure redis redis-server redis_answers redis_start redis_installed; then
    version=$(redis_info info server | sed -n 's/^redis_version://p')
    policy=$(redis_info config get maxmemory-policy | sed -n 2p)
    say redis "ok  Redis $version at $HOST:$REDIS_PORT"
    # Evicting a reservation record would silently free held stock.
    if [[ -n $policy && $policy != noeviction ]]; then
        note "warning: Redis maxmemory-policy is '$policy'; the reservation store needs 'noeviction'"
    fi
else
    failed+=(redis)
fi

# RabbitMQ
if command -v python3 >/dev/null && ensure rabbitmq rabbitmq-server rabbitmq_answers rabbitmq_start rabbitmq_installed; then
    version=$(amqp_probe)
    if [[ $version == unknown ]] || ! version_at_least "$version" "$RABBITMQ_MIN_VERSION"; then
        note "RabbitMQ $version at $HOST:$AMQP_PORT is older than $RABBITMQ_MIN_VERSION (quorum queue at-least-once dead-lettering)"
        failed+=("rabbitmq (version $version < $RABBITMQ_MIN_VERSION)")
    else
        say rabbitmq "ok  RabbitMQ $version at $HOST:$AMQP_PORT"
    fi
else
    failed+=(rabbitmq)
fi

if ((${#missing[@]})); then
    note "not installed: ${missing[*]}"
    if is_debian; then
        if is_root; then
            note "  install with: apt-get update && apt-get install -y postgresql redis-server rabbitmq-server"
        else
            note "  install with: sudo apt-get update && sudo apt-get install -y postgresql redis-server rabbitmq-server"
            note "  (or run this script as root, which installs and starts them)"
        fi
    else
        note "  install PostgreSQL >= 15, Redis >= 7 and RabbitMQ >= 3.10 with your system's package manager"
    fi
fi

if ((${#failed[@]})); then
    note "not answering: ${failed[*]}"
    exit 1
fi
