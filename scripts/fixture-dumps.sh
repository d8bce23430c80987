#!/usr/bin/env bash
# fixture-dumps.sh - real pg_dump output for every fixture, checked in beside it, for the tests
# that need dumps but no server (tests/mutation.rs).
#
#   scripts/fixture-dumps.sh                    every case
#   scripts/fixture-dumps.sh grant/ column/add  only cases whose <kind>/<case> starts with one
#                                               of these
#   scripts/fixture-dumps.sh --check            write nothing; exit 1 when a checked-in dump
#                                               differs from a fresh one (or is missing)
#
# For each fixtures/<kind>/<case>/ it loads old.sql and new.sql (after the roles of roles.txt)
# into two scratch databases on the local server (PGALIGN_TEST_HOST/PORT/USER, default
# 127.0.0.1:5432 postgres), named pgalign_fd_<pid>_<n>_{old,new} and dropped afterwards (also when
# the script is interrupted), and writes fixtures/<kind>/<case>/dumps/{old,new}.sql.
#
# The form written is what pgalign reads from a live database: `pg_dump --schema-only
# --format=custom`, then `pg_restore --verbose` of that archive, whose text carries pg_dump's TOC
# ids and `-- Dependencies:` lines and reads through the same reader as a plain dump file. What
# changes from run to run is taken out, so that regenerating is byte-stable: `\restrict` /
# `\unrestrict` lines (a random key), `-- Started on` / `-- Completed on`, and the OIDs in
# `-- TOC entry N (class C OID O)` (the dump ids stay: they follow the load order).
#
# Tools: PostgreSQL 15's (PGALIGN_FIXTURE_BINDIR, default /usr/lib/postgresql/15/bin), so that
# the dumps do not change with whatever client is first on PATH.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"

host="${PGALIGN_TEST_HOST:-127.0.0.1}"
port="${PGALIGN_TEST_PORT:-5432}"
user="${PGALIGN_TEST_USER:-postgres}"
bindir="${PGALIGN_FIXTURE_BINDIR:-/usr/lib/postgresql/15/bin}"

check=""
prefixes=()
for a in "$@"; do
  case "$a" in
    --check) check=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
    -*) echo "fixture-dumps.sh: unknown option $a" >&2; exit 2 ;;
    *) prefixes+=("$a") ;;
  esac
done

for tool in psql pg_dump pg_restore; do
  [ -x "$bindir/$tool" ] || { echo "fixture-dumps.sh: no $bindir/$tool (set PGALIGN_FIXTURE_BINDIR)" >&2; exit 1; }
done
conn=(-X -q -h "$host" -p "$port" -U "$user")
admin() { "$bindir/psql" "${conn[@]}" -v ON_ERROR_STOP=1 -d postgres -c "$1" >/dev/null; }
admin "SELECT 1" || { echo "fixture-dumps.sh: cannot reach the server at $host:$port as $user" >&2; exit 1; }

work="$(mktemp -d)"
# Databases made and not dropped yet. A DROP DATABASE waits for a checkpoint (1-4 s here); drops
# run together share it, so they are made in batches.
made=()
drop_made() {
  for db in ${made[@]+"${made[@]}"}; do
    admin "DROP DATABASE IF EXISTS $db WITH (FORCE)" &
  done
  wait
  made=()
}
cleanup() {
  drop_made || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ensure_roles() {
  [ -f "$1/roles.txt" ] || return 0
  while IFS= read -r r || [ -n "$r" ]; do
    r="$(printf '%s' "$r" | tr -d '\r' | sed 's/^[[:space:]]*//; s/[[:space:]]*$//')"
    [ -n "$r" ] || continue
    lit="${r//\'/\'\'}"
    ident="\"${r//\"/\"\"}\""
    admin "DO \$\$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$lit') THEN CREATE ROLE $ident; END IF; EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END\$\$"
  done <"$1/roles.txt"
}

# The stable text of one database's schema, on stdout.
dump_text() {
  local db="$1" archive="$work/$1.dump"
  "$bindir/pg_dump" -h "$host" -p "$port" -U "$user" --schema-only --format=custom \
    --file="$archive" "$db"
  "$bindir/pg_restore" --verbose --file=- "$archive" 2>/dev/null \
    | sed -E -e '/^\\(un)?restrict /d' -e '/^-- (Started|Completed) on /d' \
             -e 's/^(-- TOC entry [0-9]+) \(class [0-9]+ OID [0-9]+\)$/\1/'
}

n=0
changed=0
failed=0
for case_dir in "$root"/fixtures/*/*/; do
  case_dir="${case_dir%/}"
  [ -f "$case_dir/old.sql" ] && [ -f "$case_dir/new.sql" ] || continue
  name="${case_dir#"$root/fixtures/"}"
  if [ ${#prefixes[@]} -gt 0 ]; then
    keep=""
    for p in "${prefixes[@]}"; do [[ "$name" == "$p"* ]] && keep=1; done
    [ -n "$keep" ] || continue
  fi
  ensure_roles "$case_dir"
  for side in old new; do
    n=$((n + 1))
    db="pgalign_fd_$$_${n}_$side"
    admin "CREATE DATABASE $db"
    made+=("$db")
    if ! err="$("$bindir/psql" "${conn[@]}" -v ON_ERROR_STOP=1 -1 -d "$db" -f "$case_dir/$side.sql" 2>&1 >/dev/null)"; then
      echo "fixture-dumps.sh: $name/$side.sql does not load: $err" >&2
      failed=$((failed + 1))
    else
      dump_text "$db" >"$work/out.sql"
      out="$case_dir/dumps/$side.sql"
      if ! cmp -s "$work/out.sql" "$out" 2>/dev/null; then
        changed=$((changed + 1))
        if [ -n "$check" ]; then
          echo "fixture-dumps.sh: $name/dumps/$side.sql is missing or differs from a fresh dump" >&2
        else
          mkdir -p "$case_dir/dumps"
          cp "$work/out.sql" "$out"
        fi
      fi
    fi
  done
  [ ${#made[@]} -lt 16 ] || drop_made
done
drop_made

verb="written"
[ -n "$check" ] && verb="differing"
echo "fixture-dumps.sh: $n dump(s), $changed $verb, $failed not loadable" >&2
[ "$failed" -eq 0 ] && { [ -z "$check" ] || [ "$changed" -eq 0 ]; }
