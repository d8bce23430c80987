#!/usr/bin/env bash
# corpus.sh - round-trip pgalign over the schema-pair corpus (see CORPUS_DIR/README.md).
#
# For every case <peer>/<case>/ (a.sql = current -> TARGET, b.sql = desired -> SOURCE):
#   1. create two fresh databases, create the roles of roles.txt, load a.sql into TARGET and
#      b.sql into SOURCE (psql -1 -v ON_ERROR_STOP=1); a load failure      -> invalid-input
#   2. pgalign plan --source SRC --target TGT -o PLAN; non-zero exit        -> error
#   3. psql -1 -v ON_ERROR_STOP=1 -f PLAN on TARGET; failure                -> apply-error
#   4. pg_dump --schema-only of both, normalize (scripts/dumpnorm.py), compare: equal -> pass,
#      different -> mismatch
# in mode "full" (no flags) and/or "noowner" (pgalign and pg_dump with --no-owner --no-privileges).
#
# Output (stdout), one line per case in peer/case order, then totals:
#   OUTDIR <dir with diffs/plans/errors>
#   CASE <mode> <peer>/<case> <status> [reason]
#   TOTAL <mode> <peer> pass=N apply-error=N mismatch=N error=N invalid-input=N valid=N rate=NN.N%
#   TOTAL <mode> ALL ...
# Exit status: 0; 1 if the harness broke (server unreachable, pgalign missing, database creation
# failed, ...) or, with --min-rate R, if the ALL rate of any mode is below R; 2 on a usage error.

set -u -o pipefail
export LC_ALL=C

SCRIPT_DIR=$(cd "$(dirname "$0")" && pwd)
SELF="$SCRIPT_DIR/$(basename "$0")"
NORMALIZER="$SCRIPT_DIR/dumpnorm.py"

usage() {
    cat <<EOF
usage: $(basename "$0") [options]

  --mode full|noowner|both   which comparison mode(s) to run (default: both)
  --peer NAME                only this peer (repeatable); peers: apgdiff migra pg-schema-diff pgschema
  --case GLOB                only cases whose name (or peer/name) matches the shell glob
  -j, --jobs N               run N cases in parallel (default: 2)
  --timeout SECS             time budget per case (default: \$CASE_TIMEOUT or 60)
  --min-rate R               exit 1 if the ALL pass rate (percent) of any mode is below R
  --out DIR                  artifact directory (default: \$OUT_DIR or <repo>/target/corpus-out)
  --progress                 also print each CASE line to stderr as soon as it finishes
                             (default when stderr is a terminal)
  -h, --help                 this text

environment:
  PGALIGN      pgalign binary (default: pgalign on PATH)
  CORPUS_DIR   corpus root (default: <repo>/../shared/corpus)
  OUT_DIR      artifact directory (see --out)
  PGHOST PGPORT PGUSER   server (default 127.0.0.1 5432 postgres)
  CASE_TIMEOUT per-case time budget in seconds (see --timeout)

artifacts in OUT_DIR, named <mode>__<peer>__<case>.*:
  .diff       unified diff of the normalized dumps (--- source, +++ target after migration)
  .plan.sql   the plan (mismatch, apply-error, error)
  .err        pgalign stderr (error), psql errors (apply-error, invalid-input)
EOF
}

# ---------------------------------------------------------------------------------------------
# shared helpers

# first meaningful line of an error file, shortened, on one line
first_error() {
    local f=$1 line=""
    [[ -s $f ]] || { echo ""; return; }
    line=$(grep -m1 -E '(ERROR|FATAL|PANIC|[Ee]rror|panicked)' "$f" 2>/dev/null)
    [[ -n $line ]] || line=$(grep -m1 -v -E '^[[:space:]]*$' "$f" 2>/dev/null)
    # psql:/long/path/file.sql:12: ERROR:  msg  ->  file.sql:12: ERROR: msg
    line=$(printf '%s' "$line" | sed -E 's#^psql:([^:]*/)?##' | tr '\t\r' '  ' | tr -s ' ')
    printf '%s' "${line:0:240}"
}

db_url() {
    local db=$1 host=$PGHOST
    if [[ $host == /* ]]; then
        printf 'postgres://%s@/%s?host=%s&port=%s' "$PGUSER" "$db" "$host" "$PGPORT"
    else
        [[ $host == *:* ]] && host="[$host]"
        printf 'postgres://%s@%s:%s/%s' "$PGUSER" "$host" "$PGPORT" "$db"
    fi
}

drop_dbs() { # names...
    local sql="" db
    for db in "$@"; do sql+="DROP DATABASE IF EXISTS \"$db\" WITH (FORCE);"$'\n'; done
    [[ -n $sql ]] || return 0
    printf '%s' "$sql" | timeout -k 5 60 psql -X -q -d postgres -v ON_ERROR_STOP=0 -f - >/dev/null 2>&1
}

# ---------------------------------------------------------------------------------------------
# worker: one case in one mode.  Called as: corpus.sh __case "<task>"
# task = mode<TAB>n<TAB>peer<TAB>case; writes "$WORK/res/<n>" = status<TAB>reason

STEP_PID=""
W_DBS=()
W_TMP=""

worker_cleanup() {
    # finish the cleanup even if the main script signals us again meanwhile
    trap - EXIT
    trap '' TERM INT HUP
    if [[ -n $STEP_PID ]]; then kill -TERM "$STEP_PID" 2>/dev/null; wait "$STEP_PID" 2>/dev/null; fi
    if ((${#W_DBS[@]})); then
        drop_dbs "${W_DBS[@]}"
        local db
        for db in "${W_DBS[@]}"; do rm -f "$WORK/dbs/$db"; done
    fi
    [[ -n $W_TMP ]] && rm -rf "$W_TMP"
    rm -f "$WORK/pids/$$"
}

# run_step SECS OUT ERR cmd... : runs cmd with a timeout, interruptible by our signal traps;
# returns the command's exit status (124 = timed out)
run_step() {
    local secs=$1 out=$2 err=$3
    shift 3
    if ((secs <= 0)); then echo "case time budget exhausted" >>"$err"; return 124; fi
    timeout -k 5 "$secs" "$@" >"$out" 2>"$err" </dev/null &
    STEP_PID=$!
    wait "$STEP_PID"
    local rc=$?
    STEP_PID=""
    return $rc
}

run_case() {
    local mode n peer case
    IFS=$'\t' read -r mode n peer case <<<"$1"
    local dir="$CORPUS_DIR/$peer/$case"
    local base="${mode}__${peer}__${case}"
    local res="$WORK/res/$n"
    local src="pgalign_corpus_${RUN_ID}_${n}_src" tgt="pgalign_corpus_${RUN_ID}_${n}_tgt"
    local t0=$SECONDS
    # the run is over (interrupted) when $WORK/case is gone or $WORK/stop exists
    mkdir "$WORK/case/$n" 2>/dev/null || exit 0
    W_TMP="$WORK/case/$n"
    trap worker_cleanup EXIT
    trap 'exit 143' TERM HUP
    trap 'exit 130' INT
    echo $$ >"$WORK/pids/$$" || exit 0
    [[ -e $WORK/stop ]] && exit 0
    rm -f "$OUT_DIR/$base".*

    local status="" reason=""
    left() { echo $((CASE_TIMEOUT - (SECONDS - t0))); }
    finish() {
        printf '%s\t%s\n' "$status" "$reason" >"$res.tmp" && mv "$res.tmp" "$res"
        if [[ $PROGRESS == 1 ]]; then
            printf 'CASE %s %s/%s %s%s\n' "$mode" "$peer" "$case" "$status" "${reason:+ $reason}" >&2
        fi
        exit 0
    }
    local noflags=()
    [[ $mode == noowner ]] && noflags=(--no-owner --no-privileges)

    # 1. databases, roles, input
    touch "$WORK/dbs/$src" "$WORK/dbs/$tgt"
    W_DBS=("$src" "$tgt")
    # not interruptible on purpose: a CREATE DATABASE whose client is killed mid-way can still
    # commit on the server after our cleanup ran
    if ! timeout -k 5 60 psql -X -q -d postgres -v ON_ERROR_STOP=1 \
        -c "CREATE DATABASE \"$src\" TEMPLATE template0" -c "CREATE DATABASE \"$tgt\" TEMPLATE template0" \
        >/dev/null 2>"$W_TMP/createdb.err" </dev/null; then
        status=harness-error reason="create database: $(first_error "$W_TMP/createdb.err")"
        finish
    fi
    if [[ -f $dir/roles.txt ]]; then
        local role lit sql=""
        while IFS= read -r role || [[ -n $role ]]; do
            role=${role%$'\r'}
            role=$(printf '%s' "$role" | sed -E 's/^[[:space:]]+//; s/[[:space:]]+$//')
            [[ -z $role || $role == \#* ]] && continue
            lit=${role//\'/\'\'}
            sql+="DO \$pgalign_corpus_role\$
DECLARE parts text[] := parse_ident('$lit');
BEGIN
  IF array_length(parts, 1) <> 1 THEN RAISE EXCEPTION 'bad role name: %', '$lit'; END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = parts[1]) THEN
    EXECUTE format('CREATE ROLE %I', parts[1]);
  END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END \$pgalign_corpus_role\$;
"
        done <"$dir/roles.txt"
        printf '%s' "$sql" >"$W_TMP/roles.sql"
        if ! run_step "$(left)" /dev/null "$W_TMP/roles.err" psql -X -q -d postgres -v ON_ERROR_STOP=1 \
            -f "$W_TMP/roles.sql"; then
            status=invalid-input reason="roles.txt: $(first_error "$W_TMP/roles.err")"
            cp "$W_TMP/roles.err" "$OUT_DIR/$base.err" 2>/dev/null
            finish
        fi
    fi
    local which db f rc
    for which in a b; do
        if [[ $which == a ]]; then db=$tgt; else db=$src; fi
        f="$dir/$which.sql"
        run_step "$(left)" "$W_TMP/load_$which.out" "$W_TMP/load_$which.err" \
            psql -X -q -v ON_ERROR_STOP=1 -1 -d "$db" -f "$f"
        rc=$?
        if ((rc != 0)); then
            status=invalid-input
            if ((rc == 124 || rc == 137)); then reason="$which.sql: timeout"
            else reason=$(first_error "$W_TMP/load_$which.err"); [[ -n $reason ]] || reason="$which.sql: psql exit $rc"; fi
            cp "$W_TMP/load_$which.err" "$OUT_DIR/$base.err" 2>/dev/null
            finish
        fi
    done

    # 2. plan
    local plan="$W_TMP/plan.sql"
    run_step "$(left)" "$W_TMP/plan.out" "$W_TMP/plan.err" \
        "$PGALIGN" plan --source "$(db_url "$src")" --target "$(db_url "$tgt")" -o "$plan" "${noflags[@]}"
    rc=$?
    if ((rc != 0)) || [[ ! -f $plan ]]; then
        status=error
        if ((rc == 124 || rc == 137)); then reason="pgalign plan: timeout"
        elif ((rc == 0)); then reason="pgalign plan: exit 0 but no plan file written"
        else reason=$(first_error "$W_TMP/plan.err"); reason="pgalign plan exit $rc${reason:+: $reason}"; fi
        cat "$W_TMP/plan.out" "$W_TMP/plan.err" >"$OUT_DIR/$base.err" 2>/dev/null
        [[ -f $plan ]] && cp "$plan" "$OUT_DIR/$base.plan.sql"
        finish
    fi

    # 3. apply
    run_step "$(left)" "$W_TMP/apply.out" "$W_TMP/apply.err" \
        psql -X -q -v ON_ERROR_STOP=1 -1 -d "$tgt" -f "$plan"
    rc=$?
    if ((rc != 0)); then
        status=apply-error
        if ((rc == 124 || rc == 137)); then reason="apply: timeout"
        else reason=$(first_error "$W_TMP/apply.err"); [[ -n $reason ]] || reason="psql exit $rc"; fi
        cp "$plan" "$OUT_DIR/$base.plan.sql"
        cp "$W_TMP/apply.err" "$OUT_DIR/$base.err"
        finish
    fi

    # 4. compare
    for which in src tgt; do
        if [[ $which == src ]]; then db=$src; else db=$tgt; fi
        run_step "$(left)" /dev/null "$W_TMP/dump_$which.err" \
            pg_dump --schema-only "${noflags[@]}" -d "$db" -f "$W_TMP/$which.dump"
        rc=$?
        if ((rc != 0)); then
            reason="pg_dump of $which failed: $(first_error "$W_TMP/dump_$which.err")"
            ((rc == 124 || rc == 137)) && reason="pg_dump of $which: timeout"
            if [[ $which == src ]]; then status=invalid-input; else status=mismatch; fi
            cp "$plan" "$OUT_DIR/$base.plan.sql"
            cp "$W_TMP/dump_$which.err" "$OUT_DIR/$base.err"
            finish
        fi
    done
    if ! run_step "$(left)" /dev/null "$W_TMP/norm.err" python3 "$NORMALIZER" \
        "$W_TMP/src.dump" "$W_TMP/tgt.dump" -o "$W_TMP/src.norm" -o "$W_TMP/tgt.norm"; then
        status=harness-error reason="dumpnorm.py failed: $(first_error "$W_TMP/norm.err")"
        finish
    fi
    if cmp -s "$W_TMP/src.norm" "$W_TMP/tgt.norm"; then
        status=pass
        finish
    fi
    status=mismatch
    diff -u --label "source/$peer/$case ($mode)" --label "target-after-plan/$peer/$case ($mode)" \
        "$W_TMP/src.norm" "$W_TMP/tgt.norm" >"$OUT_DIR/$base.diff"
    cp "$plan" "$OUT_DIR/$base.plan.sql"
    local nminus nplus first
    nminus=$(grep -c -E '^-([^-]|$)' "$OUT_DIR/$base.diff")
    nplus=$(grep -c -E '^\+([^+]|$)' "$OUT_DIR/$base.diff")
    first=$(grep -m1 -E '^[-+]([^-+]|$)' "$OUT_DIR/$base.diff" | tr '\t' ' ' | tr -s ' ')
    reason="-$nminus/+$nplus lines; first: ${first:0:160}"
    finish
}

if [[ ${1:-} == __case ]]; then
    run_case "$2"
    exit 0
fi

# ---------------------------------------------------------------------------------------------
# main

MODES=both
PEERS=()
CASE_GLOB=""
JOBS=2
MIN_RATE=""
CASE_TIMEOUT=${CASE_TIMEOUT:-60}
OUT_DIR=${OUT_DIR:-}
PROGRESS=0
[[ -t 2 ]] && PROGRESS=1

die_usage() { echo "corpus.sh: $*" >&2; echo "try: $(basename "$0") --help" >&2; exit 2; }
need_arg() { [[ $# -ge 2 && -n $2 ]] || die_usage "$1 needs an argument"; }

while (($#)); do
    case $1 in
        --mode) need_arg "$@"; MODES=$2; shift 2 ;;
        --mode=*) MODES=${1#*=}; shift ;;
        --peer) need_arg "$@"; PEERS+=("$2"); shift 2 ;;
        --peer=*) PEERS+=("${1#*=}"); shift ;;
        --case) need_arg "$@"; CASE_GLOB=$2; shift 2 ;;
        --case=*) CASE_GLOB=${1#*=}; shift ;;
        -j | --jobs) need_arg "$@"; JOBS=$2; shift 2 ;;
        -j*) JOBS=${1#-j}; shift ;;
        --jobs=*) JOBS=${1#*=}; shift ;;
        --timeout) need_arg "$@"; CASE_TIMEOUT=$2; shift 2 ;;
        --timeout=*) CASE_TIMEOUT=${1#*=}; shift ;;
        --min-rate) need_arg "$@"; MIN_RATE=$2; shift 2 ;;
        --min-rate=*) MIN_RATE=${1#*=}; shift ;;
        --out) need_arg "$@"; OUT_DIR=$2; shift 2 ;;
        --out=*) OUT_DIR=${1#*=}; shift ;;
        --progress) PROGRESS=1; shift ;;
        --no-progress) PROGRESS=0; shift ;;
        -h | --help) usage; exit 0 ;;
        *) die_usage "unknown argument: $1" ;;
    esac
done

case $MODES in
    full) MODE_LIST=(full) ;;
    noowner) MODE_LIST=(noowner) ;;
    both) MODE_LIST=(full noowner) ;;
    *) die_usage "--mode must be full, noowner or both" ;;
esac
[[ $JOBS =~ ^[1-9][0-9]*$ ]] || die_usage "-j needs a positive integer"
[[ $CASE_TIMEOUT =~ ^[1-9][0-9]*$ ]] || die_usage "--timeout needs a positive integer"
[[ -z $MIN_RATE || $MIN_RATE =~ ^[0-9]+(\.[0-9]+)?$ ]] || die_usage "--min-rate needs a number"

fatal() { echo "corpus.sh: $*" >&2; exit 1; }

export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres}
unset PGDATABASE PGSERVICE

CORPUS_DIR=${CORPUS_DIR:-"$SCRIPT_DIR/../../shared/corpus"}
[[ -d $CORPUS_DIR ]] || fatal "corpus not found: $CORPUS_DIR (set CORPUS_DIR)"
CORPUS_DIR=$(cd "$CORPUS_DIR" && pwd)

for tool in psql pg_dump python3 timeout diff cmp xargs; do
    command -v "$tool" >/dev/null 2>&1 || fatal "required tool not found: $tool"
done
[[ -f $NORMALIZER ]] || fatal "normalizer not found: $NORMALIZER"

PGALIGN=${PGALIGN:-pgalign}
PGALIGN_PATH=$(command -v -- "$PGALIGN" 2>/dev/null) || fatal "pgalign binary not found: $PGALIGN (set PGALIGN)"
[[ -x $PGALIGN_PATH && ! -d $PGALIGN_PATH ]] || fatal "pgalign binary not executable: $PGALIGN_PATH"
[[ $PGALIGN_PATH == /* ]] || PGALIGN_PATH="$PWD/$PGALIGN_PATH"
PGALIGN=$PGALIGN_PATH

if ! err=$(timeout 15 psql -X -q -At -d postgres -c 'select 1' 2>&1 </dev/null); then
    fatal "PostgreSQL server unreachable at $PGHOST:$PGPORT as $PGUSER: $(printf '%s' "$err" | head -1)"
fi

# case list (peer, case) sorted
TASK_PEERS=()
TASK_CASES=()
shopt -s nullglob
for pdir in "$CORPUS_DIR"/*/; do
    peer=$(basename "$pdir")
    ALL_PEERS+=" $peer"
done
for p in "${PEERS[@]+"${PEERS[@]}"}"; do
    [[ " ${ALL_PEERS:-} " == *" $p "* ]] || die_usage "unknown peer '$p' (have:${ALL_PEERS:-})"
done
while IFS= read -r cdir; do
    c=$(basename "$cdir")
    peer=$(basename "$(dirname "$cdir")")
    if ((${#PEERS[@]})); then
        keep=0
        for p in "${PEERS[@]}"; do [[ $p == "$peer" ]] && keep=1; done
        ((keep)) || continue
    fi
    if [[ -n $CASE_GLOB ]]; then
        # shellcheck disable=SC2053
        [[ $c == $CASE_GLOB || "$peer/$c" == $CASE_GLOB ]] || continue
    fi
    TASK_PEERS+=("$peer")
    TASK_CASES+=("$c")
done < <(for f in "$CORPUS_DIR"/*/*/a.sql; do [[ -f ${f%/a.sql}/b.sql ]] && echo "${f%/a.sql}"; done | sort)
((${#TASK_CASES[@]})) || fatal "no cases selected"

if [[ -z $OUT_DIR ]]; then
    OUT_DIR="$SCRIPT_DIR/../target/corpus-out"
    mkdir -p "$OUT_DIR" 2>/dev/null || OUT_DIR=$(mktemp -d -t pgalign-corpus-out.XXXXXX)
fi
mkdir -p "$OUT_DIR" || fatal "cannot create $OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd)

WORK=$(mktemp -d -t pgalign-corpus.XXXXXX) || fatal "mktemp failed"
mkdir -p "$WORK/res" "$WORK/dbs" "$WORK/pids" "$WORK/case"
RUN_ID="$$$(printf 'r%04x' $((RANDOM % 65536)))"
XPID=""

main_cleanup() {
    trap - EXIT INT TERM HUP
    local i
    if [[ -n $XPID ]]; then
        : >"$WORK/stop"
        kill -TERM "$XPID" 2>/dev/null
        local p
        for p in "$WORK"/pids/*; do [[ -f $p ]] && kill -TERM "$(basename "$p")" 2>/dev/null; done
        # give the workers a moment to drop their own databases
        for ((i = 0; i < 100; i++)); do
            compgen -G "$WORK/pids/*" >/dev/null || break
            sleep 0.2
        done
    fi
    local left=()
    local d
    for d in "$WORK"/dbs/*; do [[ -f $d ]] && left+=("$(basename "$d")"); done
    ((${#left[@]})) && drop_dbs "${left[@]}"
    # final sweep over this run's name prefix (catches a CREATE DATABASE that was still running
    # on the server when its worker was killed)
    local prefix="pgalign_corpus_${RUN_ID}_" q
    q="SELECT count(*) FROM pg_stat_activity WHERE state <> 'idle' AND pid <> pg_backend_pid()
         AND strpos(query, '$prefix') > 0"
    for ((i = 0; i < 50; i++)); do
        [[ $(timeout 10 psql -X -At -d postgres -c "$q" 2>/dev/null </dev/null) == 0 ]] && break
        sleep 0.2
    done
    left=()
    while IFS= read -r d; do [[ -n $d ]] && left+=("$d"); done < <(timeout 10 psql -X -At -d postgres \
        -c "SELECT datname FROM pg_database WHERE left(datname, length('$prefix')) = '$prefix'" 2>/dev/null </dev/null)
    ((${#left[@]})) && drop_dbs "${left[@]}"
    rm -rf "$WORK"
}
trap main_cleanup EXIT
trap 'echo "corpus.sh: interrupted" >&2; exit 130' INT
trap 'echo "corpus.sh: terminated" >&2; exit 143' TERM HUP

export WORK OUT_DIR CORPUS_DIR PGALIGN CASE_TIMEOUT RUN_ID PROGRESS

# tasks: mode, n, peer, case  (n = global index = output order)
n=0
: >"$WORK/tasks"
for mode in "${MODE_LIST[@]}"; do
    for i in "${!TASK_CASES[@]}"; do
        n=$((n + 1))
        printf '%s\t%s\t%s\t%s\0' "$mode" "$n" "${TASK_PEERS[$i]}" "${TASK_CASES[$i]}" >>"$WORK/tasks"
    done
done

{
    echo "OUTDIR $OUT_DIR"
} | tee "$OUT_DIR/results.txt"
echo "corpus.sh: ${#TASK_CASES[@]} cases x ${#MODE_LIST[@]} mode(s), -j $JOBS, pgalign=$PGALIGN" >&2

T_START=$SECONDS
xargs -0 -n 1 -P "$JOBS" bash "$SELF" __case <"$WORK/tasks" &
XPID=$!
wait "$XPID"
XPID=""

# collect
: >"$WORK/all"
n=0
harness=0
for mode in "${MODE_LIST[@]}"; do
    for i in "${!TASK_CASES[@]}"; do
        n=$((n + 1))
        if [[ -f $WORK/res/$n ]]; then
            IFS=$'\t' read -r status reason <"$WORK/res/$n"
        else
            status=harness-error reason="worker produced no result"
        fi
        [[ $status == harness-error ]] && harness=$((harness + 1))
        printf '%s\t%s\t%s\t%s\t%s\n' "$mode" "${TASK_PEERS[$i]}" "${TASK_CASES[$i]}" "$status" "$reason" >>"$WORK/all"
    done
done

awk -F'\t' -v modes="${MODE_LIST[*]}" -v minrate="$MIN_RATE" -v rfile="$WORK/rates" '
function line(mode, key,   v, r) {
    v = cnt[mode, key, "pass"] + cnt[mode, key, "apply-error"] + cnt[mode, key, "mismatch"] + cnt[mode, key, "error"]
    r = v ? 100.0 * cnt[mode, key, "pass"] / v : 0
    printf "TOTAL %s %s pass=%d apply-error=%d mismatch=%d error=%d invalid-input=%d valid=%d rate=%.1f%%", \
        mode, key, cnt[mode, key, "pass"], cnt[mode, key, "apply-error"], cnt[mode, key, "mismatch"], \
        cnt[mode, key, "error"], cnt[mode, key, "invalid-input"], v, r
    if (cnt[mode, key, "harness-error"]) printf " harness-error=%d", cnt[mode, key, "harness-error"]
    printf "\n"
    return r
}
{
    mode = $1; peer = $2; st = $4
    printf "CASE %s %s/%s %s%s\n", mode, peer, $3, st, ($5 != "" ? " " $5 : "")
    cnt[mode, peer, st]++; cnt[mode, "ALL", st]++
    if (!((mode, peer) in seen)) { seen[mode, peer] = 1; order[mode] = order[mode] " " peer }
}
END {
    nm = split(modes, ms, " ")
    for (k = 1; k <= nm; k++) {
        m = ms[k]
        np = split(order[m], ps, " ")
        for (j = 1; j <= np; j++) line(m, ps[j])
        r = line(m, "ALL")
        print m, r > rfile
    }
}' "$WORK/all" | tee -a "$OUT_DIR/results.txt"

echo "corpus.sh: finished in $((SECONDS - T_START))s; artifacts in $OUT_DIR" >&2

rc=0
if ((harness)); then
    echo "corpus.sh: $harness case(s) hit a harness error (see CASE ... harness-error)" >&2
    rc=1
fi
if [[ -n $MIN_RATE ]]; then
    while read -r m r; do
        if awk -v r="$r" -v min="$MIN_RATE" 'BEGIN { exit !(r + 0 < min + 0) }'; then
            echo "corpus.sh: mode $m: ALL rate $r% is below --min-rate $MIN_RATE" >&2
            rc=1
        fi
    done <"$WORK/rates"
fi
exit $rc
