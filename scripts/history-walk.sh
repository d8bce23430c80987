#!/usr/bin/env bash
# shellcheck disable=SC2317 # (file-wide) the trap handler looks unreachable to it
# history-walk.sh - take a schema through a long sequence of states and plan between them.
#
# A chain is a directory fixtures/history/<chain>/ of migrations NN_<what>.sql; state k is the
# first k of them applied in order to an empty database (state 0: the empty database). The walk
# plans, for each pair (k -> m) below, TARGET = state k and SOURCE = state m:
#   every consecutive pair forward (k -> k+1) and backward (k+1 -> k), empty -> last,
#   last -> empty, and the long jumps listed in the chain's jumps.txt ("K M" a line).
# Single-step fixtures miss what a history does: columns dropped and added back (so in another
# order), objects that go and come back in another form, many changes planned at once.
#
# Each pair, on two fresh databases (dropped afterwards; nothing else is touched):
#   load state m into SOURCE and state k into TARGET (psql -1 -v ON_ERROR_STOP=1)
#   pgalign plan -o PLAN                                   non-zero exit  -> error
#   psql -1 -v ON_ERROR_STOP=1 -f PLAN on TARGET           failure        -> apply-error
#   pg_dump --schema-only both, scripts/dumpnorm.py:       equal          -> pass
#     equal once each CREATE TABLE's elements are sorted                  -> pass-column-order
#     different                                                           -> mismatch
#   pgalign plan --exit-code again                         not empty      -> replan
# A state that does not load is a broken fixture: the walk stops with exit 1.
#
# Known failures are checked in, one "KK->MM status [# why]" a line, in the chain's
# known-failures.txt.
# A failure not listed there fails the walk, and so does a listed one that no longer fails (or
# fails otherwise): fix the list (--record rewrites it from this run) in the commit that changes
# the outcome, so that it never rots.
#
# Output: one "WALK <chain> KK->MM <status> [known] [reason]" line per pair, then
#   HISTORY <chain> pairs=N pass=N pass-column-order=N known=N unexpected=N fixed=N
# Exit status: 0 when every outcome is the expected one; 1 otherwise or when the harness broke;
# 2 on a usage error.

set -u -o pipefail
export LC_ALL=C

SCRIPT_DIR=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$SCRIPT_DIR/.." && pwd)
NORMALIZER="$SCRIPT_DIR/dumpnorm.py"

usage() {
    cat <<EOF
usage: $(basename "$0") [options]

  --chain NAME     walk only this chain of fixtures/history/ (repeatable; default: all)
  --timeout SECS   time budget of each step (load, plan, apply, dump; default 120)
  --out DIR        artifacts: plans, errors, diffs (default: <repo>/target/history-walk)
  --record         rewrite each chain's known-failures.txt from this run (then review the diff)
  -h, --help       this text

environment: PGALIGN (pgalign binary, default: pgalign on PATH), PGHOST PGPORT PGUSER (default
127.0.0.1 5432 postgres).
EOF
}

CHAINS=()
STEP_TIMEOUT=120
OUT_DIR=""
RECORD=0
die_usage() { echo "history-walk.sh: $*" >&2; echo "try: $(basename "$0") --help" >&2; exit 2; }
while (($#)); do
    case $1 in
        --chain) [[ $# -ge 2 ]] || die_usage "--chain needs a name"; CHAINS+=("$2"); shift 2 ;;
        --timeout) [[ $# -ge 2 ]] || die_usage "--timeout needs seconds"; STEP_TIMEOUT=$2; shift 2 ;;
        --out) [[ $# -ge 2 ]] || die_usage "--out needs a directory"; OUT_DIR=$2; shift 2 ;;
        --record) RECORD=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) die_usage "unknown argument: $1" ;;
    esac
done
[[ $STEP_TIMEOUT =~ ^[1-9][0-9]*$ ]] || die_usage "--timeout needs a positive integer"

fatal() { echo "history-walk.sh: $*" >&2; exit 1; }

export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres}
unset PGDATABASE PGSERVICE

for tool in psql pg_dump python3 timeout diff cmp; do
    command -v "$tool" >/dev/null 2>&1 || fatal "required tool not found: $tool"
done
PGALIGN=${PGALIGN:-pgalign}
PGALIGN=$(command -v -- "$PGALIGN" 2>/dev/null) || fatal "pgalign binary not found: ${PGALIGN} (set PGALIGN)"
timeout 15 psql -X -q -At -d postgres -c 'select 1' >/dev/null 2>&1 </dev/null ||
    fatal "PostgreSQL server unreachable at $PGHOST:$PGPORT as $PGUSER"

HISTORY="$REPO/fixtures/history"
if ((${#CHAINS[@]} == 0)); then
    for d in "$HISTORY"/*/; do [[ -d $d ]] && CHAINS+=("$(basename "$d")"); done
fi
((${#CHAINS[@]})) || fatal "no chain under $HISTORY"

OUT_DIR=${OUT_DIR:-"$REPO/target/history-walk"}
mkdir -p "$OUT_DIR" || fatal "cannot create $OUT_DIR"
WORK=$(mktemp -d -t pgalign-history.XXXXXX) || fatal "mktemp failed"
RUN_ID="$$r$((RANDOM % 10000))"
CREATED=() # the databases this run created, and only those, are dropped

drop_dbs() {
    local sql="" db
    for db in "$@"; do sql+="DROP DATABASE IF EXISTS \"$db\" WITH (FORCE);"$'\n'; done
    [[ -n $sql ]] || return 0
    printf '%s' "$sql" | timeout -k 5 60 psql -X -q -d postgres -v ON_ERROR_STOP=0 -f - >/dev/null 2>&1
}
cleanup() {
    trap - EXIT INT TERM HUP
    ((${#CREATED[@]})) && drop_dbs "${CREATED[@]}"
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'echo "history-walk.sh: interrupted" >&2; exit 130' INT
trap 'echo "history-walk.sh: terminated" >&2; exit 143' TERM HUP

db_url() { printf 'postgres://%s@%s:%s/%s' "$PGUSER" "$PGHOST" "$PGPORT" "$1"; }

first_error() {
    local line
    line=$(grep -m1 -E '(ERROR|FATAL|PANIC|[Ee]rror|panicked)' "$1" 2>/dev/null) ||
        line=$(grep -m1 -v -E '^[[:space:]]*$' "$1" 2>/dev/null)
    line=$(printf '%s' "$line" | sed -E 's#^psql:([^:]*/)?##' | tr '\t\r' '  ' | tr -s ' ')
    printf '%s' "${line:0:200}"
}

# load_state DB K: the first K migrations of $MIGRATIONS, one transaction
load_state() {
    local db=$1 k=$2 args=() i
    ((k == 0)) && return 0
    for ((i = 0; i < k; i++)); do args+=(-f "${MIGRATIONS[$i]}"); done
    timeout -k 5 "$STEP_TIMEOUT" psql -X -q -1 -v ON_ERROR_STOP=1 -d "$db" "${args[@]}" \
        >/dev/null 2>"$WORK/load.err" </dev/null
}

# walk_pair K M: sets STATUS and REASON
walk_pair() {
    local k=$1 m=$2 tag
    tag=$(printf '%02d->%02d' "$k" "$m")
    local base
    base="$OUT_DIR/${CHAIN}__$(printf '%02d_%02d' "$k" "$m")"
    local src="pgalign_hist_${RUN_ID}_${PAIR_NO}_src" tgt="pgalign_hist_${RUN_ID}_${PAIR_NO}_tgt"
    rm -f "$base".*
    STATUS="" REASON=""
    CREATED+=("$src" "$tgt")
    if ! timeout -k 5 60 psql -X -q -d postgres -v ON_ERROR_STOP=1 \
        -c "CREATE DATABASE \"$src\" TEMPLATE template0" -c "CREATE DATABASE \"$tgt\" TEMPLATE template0" \
        >/dev/null 2>"$WORK/create.err" </dev/null; then
        fatal "create database: $(first_error "$WORK/create.err")"
    fi
    load_state "$src" "$m" || fatal "$CHAIN: state $m does not load: $(first_error "$WORK/load.err")"
    load_state "$tgt" "$k" || fatal "$CHAIN: state $k does not load: $(first_error "$WORK/load.err")"

    local rc
    timeout -k 5 "$STEP_TIMEOUT" "$PGALIGN" plan --source "$(db_url "$src")" --target "$(db_url "$tgt")" \
        -o "$base.plan.sql" >/dev/null 2>"$base.err" </dev/null
    rc=$?
    if ((rc != 0)); then
        STATUS=error REASON="pgalign plan exit $rc: $(first_error "$base.err")"
        return
    fi
    timeout -k 5 "$STEP_TIMEOUT" psql -X -q -1 -v ON_ERROR_STOP=1 -d "$tgt" -f "$base.plan.sql" \
        >/dev/null 2>"$base.err" </dev/null
    rc=$?
    # a plan that lists what it cannot do yet says so in its header: worth knowing beside a failure
    local unsupported
    unsupported=$(grep -m1 -o -E '^-- [0-9]+ step\(s\), [1-9][0-9]* not supported yet' "$base.plan.sql" | sed -E 's/.*, //')
    if ((rc != 0)); then
        STATUS=apply-error REASON=$(first_error "$base.err")
        [[ -n $REASON ]] || REASON="psql exit $rc"
        [[ -n $unsupported ]] && REASON+=" (plan: $unsupported)"
        return
    fi
    local which db
    for which in src tgt; do
        if [[ $which == src ]]; then db=$src; else db=$tgt; fi
        timeout -k 5 "$STEP_TIMEOUT" pg_dump --schema-only -d "$db" -f "$WORK/$which.dump" 2>"$base.err" </dev/null ||
            fatal "pg_dump of $which ($tag): $(first_error "$base.err")"
    done
    if ! timeout -k 5 "$STEP_TIMEOUT" python3 "$NORMALIZER" "$WORK/src.dump" "$WORK/tgt.dump" \
        -o "$WORK/src.norm" -o "$WORK/tgt.norm" 2>"$base.err" ||
        ! timeout -k 5 "$STEP_TIMEOUT" python3 "$NORMALIZER" --keep-column-order "$WORK/src.dump" "$WORK/tgt.dump" \
            -o "$WORK/src.onorm" -o "$WORK/tgt.onorm" 2>"$base.err"; then
        fatal "dumpnorm.py: $(first_error "$base.err")"
    fi
    if ! cmp -s "$WORK/src.norm" "$WORK/tgt.norm"; then
        diff -u --label "source (state $m)" --label "target (state $k) after the plan" \
            "$WORK/src.norm" "$WORK/tgt.norm" >"$base.diff"
        local first
        first=$(grep -m1 -E '^[-+]([^-+]|$)' "$base.diff" | tr '\t' ' ' | tr -s ' ')
        STATUS=mismatch REASON="-$(grep -c -E '^-([^-]|$)' "$base.diff")/+$(grep -c -E '^\+([^+]|$)' "$base.diff") lines; first: ${first:0:160}"
        [[ -n $unsupported ]] && REASON+=" (plan: $unsupported)"
        return
    fi
    # the second plan must be empty (pgalign ignores column order, so it is empty then too)
    timeout -k 5 "$STEP_TIMEOUT" "$PGALIGN" plan --exit-code --source "$(db_url "$src")" \
        --target "$(db_url "$tgt")" -o "$base.replan.sql" >/dev/null 2>"$base.err" </dev/null
    rc=$?
    if ((rc == 2)); then
        STATUS=replan
        REASON="second plan not empty: $(grep -m1 -v -E '^(--|SET |BEGIN|COMMIT|[[:space:]]*$)' "$base.replan.sql" | tr -s ' ' | cut -c1-160)"
        return
    elif ((rc != 0)); then
        STATUS=error REASON="second pgalign plan exit $rc: $(first_error "$base.err")"
        return
    fi
    rm -f "$base.replan.sql" "$base.err"
    if cmp -s "$WORK/src.onorm" "$WORK/tgt.onorm"; then
        STATUS=pass
        rm -f "$base.plan.sql"
    else
        STATUS=pass-column-order
        diff -u --label "source (state $m), column order kept" --label "target (state $k) after the plan" \
            "$WORK/src.onorm" "$WORK/tgt.onorm" >"$base.diff"
        REASON="the dumps differ in column order alone"
    fi
}

T_START=$SECONDS
bad=0
PAIR_NO=0
for CHAIN in "${CHAINS[@]}"; do
    dir="$HISTORY/$CHAIN"
    [[ -d $dir ]] || fatal "no chain $dir"
    MIGRATIONS=()
    while IFS= read -r f; do MIGRATIONS+=("$f"); done < <(find "$dir" -maxdepth 1 -name '[0-9][0-9]_*.sql' | sort)
    last=${#MIGRATIONS[@]}
    ((last >= 2)) || fatal "$dir: a chain needs at least two migrations NN_<what>.sql"
    pairs=()
    for ((k = 0; k < last; k++)); do pairs+=("$k $((k + 1))" "$((k + 1)) $k"); done
    pairs+=("0 $last" "$last 0")
    if [[ -f $dir/jumps.txt ]]; then
        while read -r a b rest; do
            [[ -z ${a:-} || $a == \#* ]] && continue
            [[ $a =~ ^[0-9]+$ && ${b:-} =~ ^[0-9]+$ && -z ${rest:-} ]] || fatal "$dir/jumps.txt: bad line: $a ${b:-} ${rest:-}"
            ((10#$a <= last && 10#$b <= last && 10#$a != 10#$b)) || fatal "$dir/jumps.txt: no such pair: $a $b"
            pairs+=("$((10#$a)) $((10#$b))")
        done <"$dir/jumps.txt"
    fi
    declare -A KNOWN=() KNOWN_NOTE=()
    known_file="$dir/known-failures.txt"
    if [[ -f $known_file ]]; then
        while read -r p st note; do
            [[ -z ${p:-} || $p == \#* ]] && continue
            KNOWN[$p]=$st
            KNOWN_NOTE[$p]=${note:-}
        done <"$known_file"
    fi
    declare -A SEEN=()
    n_pass=0 n_order=0 n_known=0 n_unexpected=0 n_fixed=0
    : >"$WORK/record"
    echo "history-walk.sh: chain $CHAIN: $last migrations, ${#pairs[@]} pairs, pgalign=$PGALIGN" >&2
    for pr in "${pairs[@]}"; do
        read -r k m <<<"$pr"
        tag=$(printf '%02d->%02d' "$k" "$m")
        [[ -n ${SEEN[$tag]:-} ]] && continue
        SEEN[$tag]=1
        PAIR_NO=$((PAIR_NO + 1))
        walk_pair "$k" "$m"
        drop_dbs "${CREATED[@]}"
        CREATED=()
        expected=${KNOWN[$tag]:-}
        note=""
        case $STATUS in
            pass | pass-column-order)
                if [[ $STATUS == pass ]]; then n_pass=$((n_pass + 1)); else n_order=$((n_order + 1)); fi
                if [[ -n $expected ]]; then
                    note="FIXED (listed as $expected in known-failures.txt: remove the line)"
                    n_fixed=$((n_fixed + 1))
                fi
                ;;
            *)
                # --record keeps the comment of a line whose outcome stays the same
                keep_note=""
                [[ $expected == "$STATUS" ]] && keep_note=${KNOWN_NOTE[$tag]:-}
                printf '%s %s%s\n' "$tag" "$STATUS" "${keep_note:+ $keep_note}" >>"$WORK/record"
                if [[ $expected == "$STATUS" ]]; then
                    note="known"
                    n_known=$((n_known + 1))
                elif [[ -n $expected ]]; then
                    note="UNEXPECTED (listed as $expected in known-failures.txt)"
                    n_unexpected=$((n_unexpected + 1))
                else
                    note="UNEXPECTED (not in known-failures.txt)"
                    n_unexpected=$((n_unexpected + 1))
                fi
                ;;
        esac
        printf 'WALK %s %s %s%s%s\n' "$CHAIN" "$tag" "$STATUS" "${note:+ $note}" "${REASON:+ $REASON}"
    done
    # listed pairs the walk no longer makes are stale too
    for p in "${!KNOWN[@]}"; do
        if [[ -z ${SEEN[$p]:-} ]]; then
            echo "WALK $CHAIN $p not-walked STALE (listed in known-failures.txt, but not a pair of the walk)"
            n_fixed=$((n_fixed + 1))
        fi
    done
    echo "HISTORY $CHAIN pairs=${#SEEN[@]} pass=$n_pass pass-column-order=$n_order known=$n_known unexpected=$n_unexpected fixed=$n_fixed"
    if ((RECORD)); then
        {
            echo "# Pairs of this chain that fail today (scripts/history-walk.sh; KK->MM = TARGET state ->"
            echo "# SOURCE state, then the status). The walk fails on a failure not listed here and on a"
            echo "# listed one that passes: update this file (--record) in the commit that changes either."
            sort "$WORK/record"
        } >"$known_file"
        echo "history-walk.sh: wrote $known_file" >&2
    elif ((n_unexpected || n_fixed)); then
        bad=1
    fi
    unset KNOWN KNOWN_NOTE SEEN
done
echo "history-walk.sh: finished in $((SECONDS - T_START))s; artifacts in $OUT_DIR" >&2
exit $bad
