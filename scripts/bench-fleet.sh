#!/usr/bin/env bash
# Fleet benchmark (issue 18): `pgalign fleet diff` of one SOURCE of N tables (default 1,000)
# against M members (default 20), J at a time (default 4), beside the floor of the same work:
# one pg_dump of SOURCE plus one pg_dump of each member, J at a time. Prints medians of the wall
# time, pgalign's peak RSS, how many times SOURCE was dumped (must be 1), the ratio to the floor,
# and one machine-readable `BENCH fleet ...` line.
#
#   scripts/bench-fleet.sh                 N=1000, M=20, J=4, 3 runs
#   scripts/bench-fleet.sh -m 10 -j 2 -r 5
#   scripts/bench-fleet.sh --pgalign PATH  the binary to measure (default: the release build in
#                                          ~/.cache/pgalign-bench if present, else the debug build)
#
# SOURCE is scripts/bench.sh's version b of N tables and each member a copy of its version a
# (made with CREATE DATABASE ... TEMPLATE), so every member differs from SOURCE by bench.sh's ~2%;
# members 1 and 2 are copies of b (equal). It runs `scripts/bench.sh -n N -r 0 --keep` first when
# those databases are missing. Only databases named pgalign_bench_fleet_<k> are created and
# dropped here; the server's configuration is never changed.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
host="${PGALIGN_BENCH_HOST:-127.0.0.1}"
port="${PGALIGN_BENCH_PORT:-5432}"
user="${PGALIGN_BENCH_USER:-postgres}"
n=1000 m=20 jobs=4 reps=3 pgalign=""
usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    -n) n="$2"; shift 2 ;;
    -m) m="$2"; shift 2 ;;
    -j) jobs="$2"; shift 2 ;;
    -r) reps="$2"; shift 2 ;;
    --pgalign) pgalign="$2"; shift 2 ;;
    -h|--help) usage ;;
    *) echo "bench-fleet.sh: unknown argument: $1" >&2; usage ;;
  esac
done
for v in "$n" "$m" "$jobs" "$reps"; do [[ "$v" =~ ^[0-9]+$ ]] && [ "$v" -ge 1 ] || usage; done
[ "$m" -ge 3 ] || { echo "bench-fleet.sh: -m wants at least 3 members" >&2; exit 2; }

say() { printf '%s\n' "$*" >&2; }
psql_() { PGOPTIONS="-c client_min_messages=warning" psql -X -q -v ON_ERROR_STOP=1 -h "$host" -p "$port" -U "$user" "$@"; }
url() { printf 'postgres://%s@%s:%s/%s' "$user" "$host" "$port" "$1"; }
if [ -z "$pgalign" ]; then
  release="$HOME/.cache/pgalign-bench/release/pgalign"
  debug="${CARGO_TARGET_DIR:-$HOME/.cache/pgalign-target}/debug/pgalign"
  if [ -x "$release" ]; then pgalign="$release"; else pgalign="$debug"; fi
fi
[ -x "$pgalign" ] || { say "bench-fleet.sh: no pgalign at $pgalign"; exit 1; }

a="pgalign_bench_${n}_a" b="pgalign_bench_${n}_b"
exists() { [ "$(psql_ -d postgres -Atc "select count(*) from pg_database where datname = '$1'")" = 1 ]; }
if ! exists "$a" || ! exists "$b"; then
  say "bench-fleet.sh: making $a and $b with scripts/bench.sh"
  "$here/bench.sh" -n "$n" -r 0 --keep >&2
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/pgalign-bench-fleet.XXXXXX")"
members=()
cleanup() {
  set +e
  for d in "${members[@]}"; do psql_ -d postgres -c "drop database if exists $d" >/dev/null 2>&1; done
  rm -rf "$work"
}
trap cleanup EXIT
say "bench-fleet.sh: making $m members"
: >"$work/members.txt"
for k in $(seq 1 "$m"); do
  d="pgalign_bench_fleet_$k"
  members+=("$d")
  psql_ -d postgres -c "drop database if exists $d" >/dev/null
  if [ "$k" -le 2 ]; then tmpl="$b"; else tmpl="$a"; fi
  psql_ -d postgres -c "create database $d template $tmpl" >/dev/null
  echo "m$k $(url "$d")" >>"$work/members.txt"
done

# A pg_dump that counts the dumps of SOURCE, for pgalign.
real_dump="$(command -v pg_dump)"
mkdir -p "$work/bin"
cat >"$work/bin/pg_dump" <<EOF
#!/bin/sh
for a in "\$@"; do case "\$a" in --dbname=*dbname=$b*) echo x >> '$work/source-dumps';; esac; done
exec '$real_dump' "\$@"
EOF
chmod +x "$work/bin/pg_dump"
ln -s "$(command -v pg_restore)" "$work/bin/pg_restore"

now_ns() { date +%s%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'; }
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
: >"$work/floor" ; : >"$work/fleet" ; : >"$work/rss"
for r in $(seq 1 "$reps"); do
  say "   run $r/$reps"
  t0=$(now_ns)
  pg_dump --schema-only --format=custom --file="$work/src.dump" "$(url "$b")"
  printf '%s\n' "${members[@]}" | xargs -P "$jobs" -I{} sh -c "pg_dump --schema-only --format=custom --file='$work/{}.dump' '$(url "")'{}"
  t1=$(now_ns)
  secs "$t0" "$t1" >>"$work/floor"
  rm -f "$work/source-dumps"
  t0=$(now_ns)
  rc=0
  /usr/bin/time -f '%M' -o "$work/time" "$pgalign" fleet diff --source "$(url "$b")" \
    --targets "$work/members.txt" --jobs "$jobs" --pg-dump "$work/bin/pg_dump" >"$work/out" 2>"$work/err" || rc=$?
  t1=$(now_ns)
  [ "$rc" = 2 ] || { say "bench-fleet.sh: pgalign fleet diff exited $rc:"; cat "$work/err" "$work/out" >&2; exit 1; }
  grep -q "^$m member(s): 2 equal, $((m - 2)) differs$" "$work/out" ||
    { say "bench-fleet.sh: unexpected results:"; tail -3 "$work/out" >&2; exit 1; }
  secs "$t0" "$t1" >>"$work/fleet"
  tail -1 "$work/time" >>"$work/rss"
  src_dumps="$(wc -l <"$work/source-dumps")"
  [ "$src_dumps" = 1 ] || { say "bench-fleet.sh: SOURCE was dumped $src_dumps times"; exit 1; }
done
floor="$(median <"$work/floor")" fleet="$(median <"$work/fleet")" rss="$(median <"$work/rss")"
ratio="$(awk -v f="$fleet" -v g="$floor" 'BEGIN { printf "%.2f", f / g }')"
echo "fleet diff: N=$n tables, $m members, --jobs $jobs, $reps runs (medians); load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "  floor (one SOURCE pg_dump + $m member pg_dumps, $jobs at a time): $floor s"
echo "  pgalign fleet diff:                                          $fleet s  (${ratio}x the floor; target <= 1.15x)"
echo "  pgalign peak RSS: $((rss / 1024)) MB; SOURCE dumped once per run"
echo "BENCH fleet n=$n members=$m jobs=$jobs floor_s=$floor fleet_s=$fleet ratio=$ratio peak_rss_kb=$rss source_dumps=1"
