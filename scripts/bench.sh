#!/usr/bin/env bash
# Benchmark: how much time and memory `pgalign plan` adds on top of pg_dump itself, on generated
# multi-tenant schemas of N tables (issue 5).
#
#   scripts/bench.sh                    N = 50, 1000, 10000; 5 runs each; drop the databases after
#   scripts/bench.sh -n 1000 -n 10000   or -n 1000,10000
#   scripts/bench.sh -r 3 --keep        keep the databases (and dumps) for the next run
#   scripts/bench.sh -n 10000 -r 0 --keep   only generate, load and dump (prepare a later run)
#   scripts/bench.sh --drop             drop every pgalign_bench_<N>_a/_b database and exit
#   scripts/bench.sh --pgalign PATH     the binary to measure (default: the release build in
#                                       ~/.cache/pgalign-bench if present, else the debug build)
#
# For each N it generates two schemas with scripts/bench/gen.py (version b changes about 2% of
# the objects of version a), loads them into pgalign_bench_<N>_a and _b on 127.0.0.1:5432 as postgres (env
# PGALIGN_BENCH_HOST/PORT/USER override), unless databases made by the same gen.py are already
# there (a COMMENT ON DATABASE marker holds gen.py's hash), and makes custom-format and plain dump
# files of both once. Then, R times, interleaved, it measures:
#   floor_dump      both `pg_dump --schema-only --format=custom` in parallel
#   floor_plain     both plain `pg_dump --schema-only` in parallel: what a user would otherwise
#                   run, the floor issue 19's targets hold db -> db to
#   floor           each side: pg_dump -Fc then `pg_restore --verbose --file=-` (what pgalign
#                   ran before it read archives itself), both sides in parallel: issue 5's floor
#   plan_db         pgalign plan --source <b db> --target <a db>
#   plan_custom     pgalign plan between the two custom-format dump files (no server)
#   plan_plain      pgalign plan between the two plain dump files (no server)
# and prints medians of wall time and peak RSS (GNU time's %M: the largest process of the tree,
# pgalign itself unless a child is bigger), ratios to the floor and to the dump sizes, the targets
# of issue 19 (and issue 5's), and one machine-readable `BENCH ...` line per metric.
#
# Two pg_dumps of 10,000 tables each can exhaust the server's lock table (`out of shared memory`,
# max_locks_per_transaction): the floor then falls back to dumping one side after the other, as
# pgalign does, and says so. The server's configuration is never changed. Only databases named
# pgalign_bench_<N>_a / _b and roles named pgalign_bench_* are created or dropped.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
gen="$here/bench/gen.py"
report="$here/bench/report.py"

host="${PGALIGN_BENCH_HOST:-127.0.0.1}"
port="${PGALIGN_BENCH_PORT:-5432}"
user="${PGALIGN_BENCH_USER:-postgres}"
cache="${PGALIGN_BENCH_CACHE:-$HOME/.cache/pgalign-bench-data}"
roles=(pgalign_bench_readonly pgalign_bench_readwrite pgalign_bench_app)

usage() { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
ns=()
reps=5
keep=""
drop_only=""
pgalign=""
while [ $# -gt 0 ]; do
  case "$1" in
    -n) [ $# -ge 2 ] || usage; IFS=', ' read -r -a more <<<"$2"; ns+=("${more[@]}"); shift 2 ;;
    -n*) IFS=', ' read -r -a more <<<"${1#-n}"; ns+=("${more[@]}"); shift ;;
    -r) [ $# -ge 2 ] || usage; reps="$2"; shift 2 ;;
    --keep) keep=1; shift ;;
    --drop) drop_only=1; shift ;;
    --pgalign) [ $# -ge 2 ] || usage; pgalign="$2"; shift 2 ;;
    -h|--help) usage ;;
    *) echo "bench.sh: unknown argument: $1" >&2; usage ;;
  esac
done
[ ${#ns[@]} -gt 0 ] || ns=(50 1000 10000)
for n in "${ns[@]}"; do
  if ! [[ "$n" =~ ^[0-9]+$ ]] || [ "$n" -lt 20 ]; then
    echo "bench.sh: -n wants table counts of at least 20, got '$n'" >&2; exit 2
  fi
done
[[ "$reps" =~ ^[0-9]+$ ]] || { echo "bench.sh: -r wants a count of runs, got '$reps'" >&2; exit 2; }

say() { printf '%s\n' "$*" >&2; }
psql_() { PGOPTIONS="-c client_min_messages=warning" psql -X -q -v ON_ERROR_STOP=1 -h "$host" -p "$port" -U "$user" "$@"; }
url() { printf 'postgres://%s@%s:%s/%s' "$user" "$host" "$port" "$1"; }

for tool in psql pg_dump pg_restore; do
  command -v "$tool" >/dev/null ||
    { say "bench.sh: needs psql, pg_dump and pg_restore (Debian: apt-get install postgresql-client)"; exit 1; }
done
command -v python3 >/dev/null || { say "bench.sh: needs python3"; exit 1; }
if [ ! -x /usr/bin/time ]; then
  say "bench.sh: installing GNU time (Debian package 'time') for peak RSS"
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq time >/dev/null
fi
psql_ -d postgres -c 'select 1' >/dev/null ||
  { say "bench.sh: no PostgreSQL at $host:$port as $user"; exit 1; }

bench_dbs() {
  psql_ -d postgres -At -c "select datname from pg_database where datname ~ '^pgalign_bench_[0-9]+_[ab]\$' order by 1"
}
drop_db() {
  [[ "$1" =~ ^pgalign_bench_[0-9]+_[ab]$ ]] || { say "bench.sh: refusing to drop '$1'"; exit 1; }
  psql_ -d postgres -c "drop database if exists $1"
}
drop_roles_if_unused() {
  # Roles are cluster-wide; drop them only when no bench database is left.
  [ -z "$(bench_dbs)" ] || return 0
  for r in "${roles[@]}"; do
    psql_ -d postgres -c "drop role if exists $r" 2>/dev/null ||
      say "bench.sh: kept role $r (still used by another database)"
  done
}

if [ -n "$drop_only" ]; then
  for db in $(bench_dbs); do say "dropping $db"; drop_db "$db"; done
  drop_roles_if_unused
  rm -rf "$cache"
  exit 0
fi

# --- the binary under test
if [ -z "$pgalign" ]; then
  release="$HOME/.cache/pgalign-bench/release/pgalign"
  debug="${CARGO_TARGET_DIR:-$HOME/.cache/pgalign-target}/debug/pgalign"
  if [ -x "$release" ]; then pgalign="$release"; build=release
  elif [ -x "$debug" ]; then pgalign="$debug"; build="debug (NOT optimized: build the release binary for real figures)"
  else say "bench.sh: no pgalign binary: CARGO_TARGET_DIR=\$HOME/.cache/pgalign-bench cargo build --release --bin pgalign, or pass --pgalign PATH"; exit 1
  fi
else
  build="given"
fi
[ -x "$pgalign" ] || { say "bench.sh: $pgalign is not executable"; exit 1; }

work="$(mktemp -d "${TMPDIR:-/tmp}/pgalign-bench.XXXXXX")"
trap 'rm -rf "$work"' EXIT
results="$work/results.tsv"   # n metric rep wall_s rss_kb
stages="$work/stages.tsv"     # n metric rep stage ms
info="$work/info.tsv"         # n key value
: >"$results"; : >"$stages"; : >"$info"

genhash="$(sha256sum "$gen" | cut -c1-16)"
now_ns() { date +%s%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.4f", (b - a) / 1e9 }'; }
rss_of() { awk '{ print $2 }' "$1"; }  # GNU time -f '%e %M' -o FILE
maxrss() { local m=0 v; for f in "$@"; do v=$(rss_of "$f"); [ "$v" -gt "$m" ] && m=$v; done; echo "$m"; }

{
  printf 'machine\tdate\t%s\n' "$(date -u +%Y-%m-%dT%H:%MZ)"
  printf 'machine\tcpus\t%s\n' "$(nproc)"
  printf 'machine\tram\t%s\n' "$(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
  printf 'machine\tcpu\t%s\n' "$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)"
  printf 'machine\tserver\t%s\n' "$(psql_ -d postgres -At -c 'show server_version')"
  printf 'machine\tpg_dump\t%s\n' "$(pg_dump --version)"
  printf 'machine\tlocks\tmax_locks_per_transaction=%s max_connections=%s\n' \
    "$(psql_ -d postgres -At -c 'show max_locks_per_transaction')" "$(psql_ -d postgres -At -c 'show max_connections')"
  printf 'machine\tpgalign\t%s (%s, built %s)\n' "$pgalign" "$build" "$(date -u -r "$pgalign" +%Y-%m-%dT%H:%MZ)"
  printf 'machine\tgen\tscripts/bench/gen.py %s\n' "$genhash"
  printf 'machine\ttree\t%s\n' "$(git -C "$here/.." describe --always --dirty 2>/dev/null || echo '?')"
} >>"$info"
say "bench.sh: measuring $pgalign ($build)"

ensure_roles() {
  for r in "${roles[@]}"; do
    psql_ -d postgres -c "do \$\$ begin create role $r nologin; exception when duplicate_object then null; end \$\$"
  done
}

# Loads pgalign_bench_<n>_<v> unless the marker says it is current. Prints "reused" or "loaded".
marker_of() {
  psql_ -d postgres -At -c "select coalesce(shobj_description(oid, 'pg_database'), '') from pg_database where datname = '$1'"
}
load_side() {
  local n="$1" v="$2" db="pgalign_bench_${1}_$2" marker="$3"
  drop_db "$db"
  psql_ -d postgres -c "create database $db"
  local t0 t1 t2
  t0=$(now_ns)
  python3 "$gen" --tables "$n" --variant "$v" --summary "$work/summary_${n}_$v" >"$work/gen_${n}_$v.sql"
  t1=$(now_ns)
  psql_ -d "$db" -f "$work/gen_${n}_$v.sql" >/dev/null
  psql_ -d "$db" -c "analyze" >/dev/null
  # Last, so that a load that failed half-way is never mistaken for a good one.
  psql_ -d postgres -c "comment on database $db is '$marker'"
  t2=$(now_ns)
  printf '%s\t%s\t%s\n' "$(secs "$t0" "$t1")" "$(secs "$t1" "$t2")" "$(wc -c <"$work/gen_${n}_$v.sql")" >"$work/load_${n}_$v"
  rm -f "$work/gen_${n}_$v.sql"
}

# One side of the floor: pg_dump (custom format), then, with "full", pg_restore --verbose to text,
# as pgalign does. Leaves time files and stderr in $work/floor_<side>.*; returns 3 when the server
# ran out of lock slots.
floor_side() {
  local db="$1" p="$2" full="$3" fmt=custom
  [ "$full" != plain ] || fmt=plain
  rm -f "$p".*
  if ! /usr/bin/time -f '%e %M' -o "$p.tdump" pg_dump --schema-only --format="$fmt" --no-sync \
      --file="$p.dump" --dbname="$(url "$db")" 2>"$p.err"; then
    grep -qE 'out of shared memory|max_locks_per_transaction' "$p.err" && return 3
    say "bench.sh: pg_dump $db failed: $(tail -3 "$p.err")"; return 1
  fi
  if [ "$full" = full ]; then
    /usr/bin/time -f '%e %M' -o "$p.trestore" pg_restore --verbose --file=- "$p.dump" >"$p.txt" 2>"$p.rerr" ||
      { say "bench.sh: pg_restore of $db failed: $(tail -3 "$p.rerr")"; return 1; }
  fi
}

# Runs the floor once, in parallel unless serial=1 (which it sets, so it must not run in a
# subshell). Writes "wall_s rss_kb mode" to $work/floor.out.
serial=""
floor_once() {
  local n="$1" full="$2" a="$work/floor_a" b="$work/floor_b" t0 t1 ra=0 rb=0
  if [ -z "$serial" ]; then
    t0=$(now_ns)
    floor_side "pgalign_bench_${n}_a" "$a" "$full" & local pa=$!
    floor_side "pgalign_bench_${n}_b" "$b" "$full" & local pb=$!
    wait "$pa" || ra=$?
    wait "$pb" || rb=$?
    t1=$(now_ns)
    if [ "$ra" = 0 ] && [ "$rb" = 0 ]; then
      local files=("$a.tdump" "$b.tdump"); [ "$full" != full ] || files+=("$a.trestore" "$b.trestore")
      echo "$(secs "$t0" "$t1") $(maxrss "${files[@]}") parallel" >"$work/floor.out"; return 0
    fi
    if [ "$ra" != 3 ] && [ "$rb" != 3 ]; then return 1; fi
    serial=1
    say "bench.sh: N=$n: two pg_dumps in parallel ran out of shared memory (the server's lock table, max_locks_per_transaction): the floor is now the two dumps one after the other, as pgalign falls back to"
    printf '%s\tfloor_fallback\tout of shared memory with both pg_dumps in parallel: floor measured serially\n' "$n" >>"$info"
  fi
  t0=$(now_ns)
  floor_side "pgalign_bench_${n}_a" "$a" "$full" || return 1
  floor_side "pgalign_bench_${n}_b" "$b" "$full" || return 1
  t1=$(now_ns)
  local files=("$a.tdump" "$b.tdump"); [ "$full" != full ] || files+=("$a.trestore" "$b.trestore")
  echo "$(secs "$t0" "$t1") $(maxrss "${files[@]}") serial" >"$work/floor.out"
}

# One pgalign run. Records wall/RSS and its --timings lines; prints nothing; returns 1 on error.
plan_once() {
  local n="$1" metric="$2" rep="$3" src="$4" tgt="$5" t0 t1 rc=0
  t0=$(now_ns)
  /usr/bin/time -f '%e %M' -o "$work/plan.time" "$pgalign" plan --timings --source "$src" --target "$tgt" \
    -o "$work/plan_$metric.sql" 2>"$work/plan.err" || rc=$?
  t1=$(now_ns)
  if [ "$rc" != 0 ] && [ "$rc" != 2 ]; then
    say "bench.sh: N=$n $metric: pgalign failed (exit $rc): $(grep -v '^Command exited' "$work/plan.err" | grep -v '^timing:' | tail -5)"
    printf '%s\terror_%s\t%s\n' "$n" "$metric" "$(grep -v '^Command exited' "$work/plan.err" | grep -v '^timing:' | tail -3 | tr '\n\t' '  ')" >>"$info"
    return 1
  fi
  printf '%s\t%s\t%s\t%s\t%s\n' "$n" "$metric" "$rep" "$(secs "$t0" "$t1")" "$(rss_of "$work/plan.time")" >>"$results"
  sed -n 's/^timing: \(.*\): \([0-9.]*\) ms\( (peak RSS.*)\)\{0,1\}$/\1\t\2/p' "$work/plan.err" |
    while IFS=$'\t' read -r stage ms; do printf '%s\t%s\t%s\t%s\t%s\n' "$n" "$metric" "$rep" "$stage" "$ms"; done >>"$stages"
  if grep -q 'one side after the other' "$work/plan.err"; then
    printf '%s\tfallback_%s\t%s\n' "$n" "$metric" "$rep" >>"$info"
  fi
  grep -v '^timing:' "$work/plan.err" | grep -v 'one side after the other' | grep -q . &&
    printf '%s\tstderr_%s\t%s\n' "$n" "$metric" "$(grep -v '^timing:' "$work/plan.err" | head -c 300 | tr '\n\t' '  ')" >>"$info"
  return 0
}

ran=()
for n in "${ns[@]}"; do
  say "== N=$n ($(cut -d' ' -f1-3 /proc/loadavg) load average)"
  printf '%s\tloadavg\t%s\n' "$n" "$(cut -d' ' -f1-3 /proc/loadavg)" >>"$info"
  marker="pgalign-bench gen=$genhash n=$n"
  ensure_roles
  todo=()
  for v in a b; do
    db="pgalign_bench_${n}_$v"
    ran+=("$db")
    if [ "$(marker_of "$db")" = "$marker variant=$v" ]; then
      printf '%s\tload_%s\treused (%s)\n' "$n" "$v" "$marker variant=$v" >>"$info"
    else
      todo+=("$v")
    fi
  done
  if [ ${#todo[@]} -gt 0 ]; then
    say "bench.sh: N=$n: generating and loading ${todo[*]} (both at once; 10,000 tables take minutes)"
    t0=$(now_ns)
    pids=()
    for v in "${todo[@]}"; do load_side "$n" "$v" "$marker variant=$v" & pids+=($!); done
    for p in "${pids[@]}"; do wait "$p" || { say "bench.sh: N=$n: loading failed"; exit 1; }; done
    t1=$(now_ns)
    for v in "${todo[@]}"; do
      IFS=$'\t' read -r g l sz <"$work/load_${n}_$v"
      printf '%s\tload_%s\tgenerated in %s s (%s bytes of SQL), loaded in %s s\n' "$n" "$v" "$g" "$sz" "$l" >>"$info"
    done
    printf '%s\tload_wall\t%s s for generating and loading %s in parallel\n' "$n" "$(secs "$t0" "$t1")" "${todo[*]}" >>"$info"
    [ -f "$work/summary_${n}_b" ] && printf '%s\tchanges\t%s\n' "$n" "$(tr '\n' ';' <"$work/summary_${n}_b")" >>"$info"
  fi
  if [ ! -f "$work/summary_${n}_b" ]; then
    # reused databases: the summary costs a generation without the load
    python3 "$gen" --tables "$n" --variant b --summary "$work/summary_${n}_b" >/dev/null
    printf '%s\tchanges\t%s\n' "$n" "$(tr '\n' ';' <"$work/summary_${n}_b")" >>"$info"
  fi
  printf '%s\ttables\t%s\n' "$n" "$(psql_ -d "pgalign_bench_${n}_a" -At -c "select count(*) from pg_class where relkind in ('r','p') and relnamespace::regnamespace::text not in ('pg_catalog','information_schema') and relnamespace::regnamespace::text !~ '^pg_toast'") in a, $(psql_ -d "pgalign_bench_${n}_b" -At -c "select count(*) from pg_class where relkind in ('r','p') and relnamespace::regnamespace::text not in ('pg_catalog','information_schema') and relnamespace::regnamespace::text !~ '^pg_toast'") in b" >>"$info"

  # Dump files, made once per loaded version: custom format, plain, and the text pgalign reads.
  dumps="$cache/n$n-$genhash"
  if [ ! -f "$dumps/done" ]; then
    rm -rf "$cache/n$n-"*  # this N's dumps from an older gen.py, if any
    mkdir -p "$dumps"
    for v in a b; do
      db="pgalign_bench_${n}_$v"
      pg_dump --schema-only --format=custom --no-sync --file="$dumps/$v.dump" --dbname="$(url "$db")"
      pg_dump --schema-only --no-sync --file="$dumps/$v.sql" --dbname="$(url "$db")"
      pg_restore --verbose --file="$dumps/$v.txt" "$dumps/$v.dump" 2>/dev/null
    done
    touch "$dumps/done"
  fi
  for v in a b; do
    for k in dump sql txt; do printf '%s\tsize_%s_%s\t%s\n' "$n" "$k" "$v" "$(wc -c <"$dumps/$v.$k")" >>"$info"; done
  done

  [ "$reps" -gt 0 ] || continue
  # Warm-up (not recorded): server caches, the page cache, and whether parallel dumps fit.
  serial=""
  floor_once "$n" "" || { say "bench.sh: N=$n: pg_dump failed"; exit 1; }
  plan_once "$n" warmup 0 "$dumps/b.sql" "$dumps/a.sql" || true
  sed -i '/\twarmup\t/d' "$results" "$stages"

  failed=()
  for rep in $(seq 1 "$reps"); do
    say "   run $rep/$reps"
    floor_once "$n" "" || { say "bench.sh: N=$n: pg_dump failed"; exit 1; }
    read -r w r mode <"$work/floor.out"
    printf '%s\tfloor_dump\t%s\t%s\t%s\n' "$n" "$rep" "$w" "$r" >>"$results"
    printf '%s\tmode_floor_dump\t%s\n' "$n" "$mode" >>"$info"
    floor_once "$n" plain || { say "bench.sh: N=$n: plain pg_dump failed"; exit 1; }
    read -r w r mode <"$work/floor.out"
    printf '%s\tfloor_plain\t%s\t%s\t%s\n' "$n" "$rep" "$w" "$r" >>"$results"
    printf '%s\tmode_floor_plain\t%s\n' "$n" "$mode" >>"$info"
    floor_once "$n" full || { say "bench.sh: N=$n: pg_dump/pg_restore failed"; exit 1; }
    read -r w r mode <"$work/floor.out"
    printf '%s\tfloor\t%s\t%s\t%s\n' "$n" "$rep" "$w" "$r" >>"$results"
    printf '%s\tmode_floor\t%s\n' "$n" "$mode" >>"$info"
    if [ "$rep" = 1 ]; then
      for v in a b; do printf '%s\tsize_live_%s\t%s\n' "$n" "$v" "$(wc -c <"$work/floor_$v.txt")" >>"$info"; done
    fi
    rm -f "$work"/floor_?.dump "$work"/floor_?.txt
    for m in plan_db plan_custom plan_plain; do
      [[ " ${failed[*]-} " == *" $m "* ]] && continue
      case $m in
        plan_db) s="$(url "pgalign_bench_${n}_b")"; t="$(url "pgalign_bench_${n}_a")" ;;
        plan_custom) s="$dumps/b.dump"; t="$dumps/a.dump" ;;
        plan_plain) s="$dumps/b.sql"; t="$dumps/a.sql" ;;
      esac
      plan_once "$n" "$m" "$rep" "$s" "$t" || failed+=("$m")
    done
  done
  # The plans must not depend on where the schemas came from (header lines name the sources).
  for m in plan_db plan_custom plan_plain; do
    [ -f "$work/plan_$m.sql" ] || continue
    printf '%s\tplan_%s\t%s lines, %s, sha %s\n' "$n" "$m" "$(wc -l <"$work/plan_$m.sql")" \
      "$(sed -n 's/^-- \([0-9]* step(s), [0-9]* not supported yet\)$/\1/p' "$work/plan_$m.sql")" \
      "$(grep -v '^-- source\|^-- target' "$work/plan_$m.sql" | sha256sum | cut -c1-12)" >>"$info"
  done
  rm -f "$work"/plan_*.sql
done

python3 "$report" "$results" "$stages" "$info"

if [ -z "$keep" ]; then
  for db in "${ran[@]}"; do say "dropping $db (--keep keeps it for the next run)"; drop_db "$db"; done
  for n in "${ns[@]}"; do rm -rf "$cache/n$n-$genhash"; done
  drop_roles_if_unused
fi
