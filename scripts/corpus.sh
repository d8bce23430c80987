#!/usr/bin/env bash
# shellcheck disable=SC2317 # (file-wide) the trap handlers and the xargs worker look unreachable to it
# corpus.sh - round-trip pgalign over the schema-pair corpora (see each corpus's README.md):
#   peers      CORPUS_DIR    (default ../shared/corpus): other tools' test suites
#   realworld  REALWORLD_DIR (default ../shared/corpus-realworld): states of real projects'
#              schemas along their migration histories
#
# For every case <peer>/<case>/ (a.sql = current -> TARGET, b.sql = desired -> SOURCE):
#   1. create two fresh databases, create the roles of roles.txt, load a.sql into TARGET and
#      b.sql into SOURCE (psql -1 -v ON_ERROR_STOP=1); a load failure      -> invalid-input
#      (a case with roles.txt does 1 under a cluster-wide lock file, see ROLES_LOCK below)
#   2. pgalign plan --source SRC --target TGT -o PLAN; non-zero exit        -> error
#   3. psql -1 -v ON_ERROR_STOP=1 -f PLAN on TARGET; failure                -> apply-error
#   4. pg_dump --schema-only of both, normalize (scripts/dumpnorm.py), compare:
#      equal                                                                -> pass
#      equal only once each CREATE TABLE's elements are sorted              -> pass-column-order
#      (pgalign leaves column order alone by design: counted as a pass for the rate, but apart)
#      different even then                                                  -> mismatch
# in mode "full" (no flags) and/or "noowner" (pgalign and pg_dump with --no-owner --no-privileges).
#
# Output (stdout), one line per case in corpus/peer/case order, then totals. The peers corpus
# prints its lines as it always did; every other corpus prefixes its peer with "<corpus>:":
#   OUTDIR <dir with diffs/plans/errors>
#   CASE <mode> <peer>/<case> <status> [reason]
#   CASE <mode> realworld:<project>/<case> <status> [reason]
#   TOTAL <mode> <peer> pass=N apply-error=N mismatch=N error=N invalid-input=N valid=N rate=NN.N% [harness-error=N] pass-column-order=N
#   TOTAL <mode> ALL ...                      (the peers corpus)
#   TOTAL <mode> realworld:<project> ...
#   TOTAL <mode> realworld:ALL ...            (the realworld corpus)
# pass=N counts pass-column-order cases too (rate = pass / valid); pass-column-order=N says how
# many of them differ in column order alone.
# Exit status: 0; 1 if the harness broke (server unreachable, pgalign missing, database creation
# failed, ...) or, with --min-rate, if a corpus's ALL rate in any mode is below its floor; 2 on a
# usage error.

set -u -o pipefail
export LC_ALL=C

SCRIPT_DIR=$(cd "$(dirname "$0")" && pwd)
SELF="$SCRIPT_DIR/$(basename "$0")"
NORMALIZER="$SCRIPT_DIR/dumpnorm.py"

usage() {
    cat <<EOF
usage: $(basename "$0") [options]

  --mode full|noowner|both   which comparison mode(s) to run (default: both)
  --corpus NAME[,NAME]       which corpora (repeatable; default: peers,realworld)
  --peer NAME                only this peer or project (repeatable), e.g. migra, crates-io
  --case GLOB                only cases whose name (or peer/name) matches the shell glob
  -j, --jobs N               run N cases in parallel (default: 2)
  --timeout SECS             time budget per case (default: \$CASE_TIMEOUT or 60)
  --min-rate [CORPUS=]R      exit 1 if the ALL pass rate (percent) of a corpus in any mode is
                             below R (repeatable; without CORPUS= it applies to every corpus)
  --out DIR                  artifact directory (default: \$OUT_DIR or <repo>/target/corpus-out)
  --progress                 also print each CASE line to stderr as soon as it finishes
                             (default when stderr is a terminal)
  -h, --help                 this text

environment:
  PGALIGN      pgalign binary (default: pgalign on PATH)
  CORPUS_DIR   root of the peers corpus (default: <repo>/../shared/corpus)
  REALWORLD_DIR  root of the realworld corpus (default: <repo>/../shared/corpus-realworld)
  OUT_DIR      artifact directory (see --out)
  PGHOST PGPORT PGUSER   server (default 127.0.0.1 5432 postgres)
  CASE_TIMEOUT per-case time budget in seconds (see --timeout)

artifacts in OUT_DIR (peers) and OUT_DIR/<corpus>/ (the others), named <mode>__<peer>__<case>.*:
  .diff       unified diff of the normalized dumps (--- source, +++ target after migration);
              for pass-column-order, of the dumps with each table's column order kept
  .plan.sql   the plan (pass-column-order, mismatch, apply-error, error)
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

# one line per CREATE TABLE of a normalized dump: "<table><TAB><its elements, in order>",
# sorted (to find the tables whose elements differ between two dumps)
table_elements() {
    awk '
    function flush() { if (name != "") print name "\t" elems; name = ""; elems = "" }
    in_table && /^\)/ { flush(); in_table = 0; next }
    in_table { elems = elems "\037" $0; next }
    /^CREATE (UNLOGGED |FOREIGN )?TABLE .*\($/ {
        name = ($2 == "TABLE") ? $3 : $4; elems = ""; in_table = 1
    }' "$1" | sort
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

# root directory of a corpus
corpus_root() {
    case $1 in
        peers) printf '%s' "$CORPUS_DIR" ;;
        realworld) printf '%s' "$REALWORLD_DIR" ;;
        *) return 1 ;;
    esac
}

# how a corpus's peers are printed: as they always were for peers, "<corpus>:<peer>" otherwise
peer_label() { # corpus peer
    if [[ $1 == peers ]]; then printf '%s' "$2"; else printf '%s:%s' "$1" "$2"; fi
}

# ---------------------------------------------------------------------------------------------
# worker: one case in one mode.  Called as: corpus.sh __case "<task>"
# task = mode<TAB>n<TAB>corpus<TAB>peer<TAB>case; writes "$WORK/res/<n>" = status<TAB>reason

STEP_PID=""
W_DBS=()
W_TMP=""

worker_cleanup() {
    # finish the cleanup even if the main script signals us again meanwhile
    trap - EXIT
    trap '' TERM INT HUP
    # never leave the roles lock held while cleaning up (closing the fd releases it)
    exec 9>&-
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
    # 9>&-: a child must not hold the roles lock (fd 9) after we release it
    timeout -k 5 "$secs" "$@" >"$out" 2>"$err" </dev/null 9>&- &
    STEP_PID=$!
    wait "$STEP_PID"
    local rc=$?
    STEP_PID=""
    return $rc
}

run_case() {
    local mode n corpus peer case
    IFS=$'\t' read -r mode n corpus peer case <<<"$1"
    local dir
    dir="$(corpus_root "$corpus")/$peer/$case"
    local label
    label=$(peer_label "$corpus" "$peer")
    local base="${mode}__${peer}__${case}"
    [[ $corpus == peers ]] || base="$corpus/$base"
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
            printf 'CASE %s %s/%s %s%s\n' "$mode" "$label" "$case" "$status" "${reason:+ $reason}" >&2
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
        # Roles are cluster-wide, and some states change them as they load (supabase-storage:
        # ALTER USER ... SET search_path, GRANT role TO role), so two such loads at once can fail
        # with "tuple concurrently updated". The roles and the loads of every case that has a
        # roles.txt are therefore made under one lock file per server, which every corpus.sh run
        # on this machine shares; the wait is bounded by the case's time budget. (Roles are never
        # dropped: other cases and runs may be using them.)
        if ! exec 9>>"$ROLES_LOCK"; then
            status=harness-error reason="cannot open the roles lock $ROLES_LOCK"
            finish
        fi
        local wait_secs
        wait_secs=$(left)
        ((wait_secs > 0)) || wait_secs=1
        # in the background (an flock of the inherited fd locks it for us too), so that our
        # signal traps still run while we wait
        flock -w "$wait_secs" 9 &
        STEP_PID=$!
        if ! wait "$STEP_PID"; then
            STEP_PID=""
            status=harness-error reason="waited ${wait_secs}s for the roles lock $ROLES_LOCK"
            finish
        fi
        STEP_PID=""
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
        # the lock above covers this harness's loads, not a client outside it: one retry (the
        # load is one transaction, so the failed attempt left the database empty)
        if ((rc != 0 && rc != 124 && rc != 137)) && grep -q 'tuple concurrently updated' "$W_TMP/load_$which.err"; then
            echo "corpus.sh: $mode $label/$case: $which.sql: tuple concurrently updated, loading it again" >&2
            run_step "$(left)" "$W_TMP/load_$which.out" "$W_TMP/load_$which.err" \
                psql -X -q -v ON_ERROR_STOP=1 -1 -d "$db" -f "$f"
            rc=$?
        fi
        if ((rc != 0)); then
            status=invalid-input
            if ((rc == 124 || rc == 137)); then reason="$which.sql: timeout"
            else reason=$(first_error "$W_TMP/load_$which.err"); [[ -n $reason ]] || reason="$which.sql: psql exit $rc"; fi
            cp "$W_TMP/load_$which.err" "$OUT_DIR/$base.err" 2>/dev/null
            finish
        fi
    done
    exec 9>&- # the roles lock, if taken

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
    # two canonical forms of each dump: .norm with each CREATE TABLE's elements sorted (what
    # "equal" has always meant here, and what tests/common/normalize.rs mirrors), .onorm with
    # them in the dump's order
    if ! run_step "$(left)" /dev/null "$W_TMP/norm.err" python3 "$NORMALIZER" \
        "$W_TMP/src.dump" "$W_TMP/tgt.dump" -o "$W_TMP/src.norm" -o "$W_TMP/tgt.norm" ||
        ! run_step "$(left)" /dev/null "$W_TMP/norm.err" python3 "$NORMALIZER" --keep-column-order \
            "$W_TMP/src.dump" "$W_TMP/tgt.dump" -o "$W_TMP/src.onorm" -o "$W_TMP/tgt.onorm"; then
        status=harness-error reason="dumpnorm.py failed: $(first_error "$W_TMP/norm.err")"
        finish
    fi
    if cmp -s "$W_TMP/src.onorm" "$W_TMP/tgt.onorm"; then
        status=pass
        finish
    fi
    if cmp -s "$W_TMP/src.norm" "$W_TMP/tgt.norm"; then
        # equal but for the order of some tables' columns (real histories drop and re-add
        # columns; pgalign leaves the order alone by design): a pass, counted apart
        status=pass-column-order
        diff -u --label "source/$label/$case ($mode, column order kept)" \
            --label "target-after-plan/$label/$case ($mode, column order kept)" \
            "$W_TMP/src.onorm" "$W_TMP/tgt.onorm" >"$OUT_DIR/$base.diff"
        cp "$plan" "$OUT_DIR/$base.plan.sql"
        local tables ntables
        tables=$(comm -3 <(table_elements "$W_TMP/src.onorm") <(table_elements "$W_TMP/tgt.onorm") |
            sed -E 's/^\t//; s/\t.*//' | sort -u)
        ntables=$(printf '%s\n' "$tables" | grep -c .)
        tables=$(printf '%s\n' "$tables" | head -5 | paste -sd ' ' -)
        ((ntables > 5)) && tables+=" ..."
        reason="column order differs in $ntables table(s): $tables"
        finish
    fi
    status=mismatch
    diff -u --label "source/$label/$case ($mode)" --label "target-after-plan/$label/$case ($mode)" \
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
CORPORA_ARG=""
PEERS=()
CASE_GLOB=""
JOBS=2
MIN_RATES=()
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
        --corpus) need_arg "$@"; CORPORA_ARG+=",$2"; shift 2 ;;
        --corpus=*) CORPORA_ARG+=",${1#*=}"; shift ;;
        --peer) need_arg "$@"; PEERS+=("$2"); shift 2 ;;
        --peer=*) PEERS+=("${1#*=}"); shift ;;
        --case) need_arg "$@"; CASE_GLOB=$2; shift 2 ;;
        --case=*) CASE_GLOB=${1#*=}; shift ;;
        -j | --jobs) need_arg "$@"; JOBS=$2; shift 2 ;;
        -j*) JOBS=${1#-j}; shift ;;
        --jobs=*) JOBS=${1#*=}; shift ;;
        --timeout) need_arg "$@"; CASE_TIMEOUT=$2; shift 2 ;;
        --timeout=*) CASE_TIMEOUT=${1#*=}; shift ;;
        --min-rate) need_arg "$@"; MIN_RATES+=("$2"); shift 2 ;;
        --min-rate=*) MIN_RATES+=("${1#*=}"); shift ;;
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

KNOWN_CORPORA=(peers realworld)
CORPORA=()
IFS=, read -r -a corpus_words <<<"${CORPORA_ARG#,}"
for c in "${corpus_words[@]+"${corpus_words[@]}"}"; do
    [[ -n $c ]] || continue
    [[ " ${KNOWN_CORPORA[*]} " == *" $c "* ]] || die_usage "unknown corpus '$c' (have: ${KNOWN_CORPORA[*]})"
    [[ " ${CORPORA[*]-} " == *" $c "* ]] || CORPORA+=("$c")
done
((${#CORPORA[@]})) || CORPORA=("${KNOWN_CORPORA[@]}")

# --min-rate R (every corpus) or CORPUS=R
declare -A FLOOR=()
for spec in "${MIN_RATES[@]+"${MIN_RATES[@]}"}"; do
    if [[ $spec == *=* ]]; then c=${spec%%=*} r=${spec#*=}; else c="" r=$spec; fi
    [[ $r =~ ^[0-9]+(\.[0-9]+)?$ ]] || die_usage "--min-rate needs a number: $spec"
    if [[ -z $c ]]; then
        for k in "${KNOWN_CORPORA[@]}"; do FLOOR[$k]=$r; done
    else
        [[ " ${KNOWN_CORPORA[*]} " == *" $c "* ]] || die_usage "--min-rate: unknown corpus '$c' (have: ${KNOWN_CORPORA[*]})"
        FLOOR[$c]=$r
    fi
done

fatal() { echo "corpus.sh: $*" >&2; exit 1; }

export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres}
unset PGDATABASE PGSERVICE

CORPUS_DIR=${CORPUS_DIR:-"$SCRIPT_DIR/../../shared/corpus"}
REALWORLD_DIR=${REALWORLD_DIR:-"$SCRIPT_DIR/../../shared/corpus-realworld"}
for c in "${CORPORA[@]}"; do
    d=$(corpus_root "$c")
    if [[ $c == peers ]]; then
        [[ -d $d ]] || fatal "corpus not found: $d (set CORPUS_DIR, or --corpus realworld)"
        CORPUS_DIR=$(cd "$d" && pwd)
    else
        [[ -d $d ]] || fatal "realworld corpus not found: $d (set REALWORLD_DIR, or --corpus peers)"
        REALWORLD_DIR=$(cd "$d" && pwd)
    fi
done
# CORPUS_DIR pointed at the realworld corpus (how it used to be run): once, not twice
if [[ " ${CORPORA[*]} " == *" peers "* && " ${CORPORA[*]} " == *" realworld "* && $CORPUS_DIR == "$REALWORLD_DIR" ]]; then
    echo "corpus.sh: CORPUS_DIR is the realworld corpus: running it once, as corpus peers" >&2
    CORPORA=(peers)
fi

for tool in psql pg_dump python3 timeout diff cmp comm xargs flock; do
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

# one lock file per server, shared by every run on this machine (see the roles in run_case)
ROLES_LOCK="${TMPDIR:-/tmp}/pgalign-corpus-roles.$(printf '%s' "$PGHOST" | tr -c 'A-Za-z0-9._-' '_').$PGPORT.lock"
[[ -e $ROLES_LOCK ]] || { : >>"$ROLES_LOCK" && chmod a+rw "$ROLES_LOCK"; } 2>/dev/null
[[ -r $ROLES_LOCK ]] || fatal "cannot create the roles lock file $ROLES_LOCK"

# case list: (corpus, peer, case), corpus in CORPORA order, then peer/case sorted
TASK_CORPORA=()
TASK_PEERS=()
TASK_CASES=()
ALL_PEERS=""
shopt -s nullglob
for corpus in "${CORPORA[@]}"; do
    for pdir in "$(corpus_root "$corpus")"/*/; do
        ALL_PEERS+=" $(basename "$pdir")"
    done
done
for p in "${PEERS[@]+"${PEERS[@]}"}"; do
    [[ " $ALL_PEERS " == *" $p "* ]] || die_usage "unknown peer '$p' (have:$ALL_PEERS)"
done
for corpus in "${CORPORA[@]}"; do
    root=$(corpus_root "$corpus")
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
        TASK_CORPORA+=("$corpus")
        TASK_PEERS+=("$peer")
        TASK_CASES+=("$c")
    done < <(for f in "$root"/*/*/a.sql; do [[ -f ${f%/a.sql}/b.sql ]] && echo "${f%/a.sql}"; done | sort)
done
((${#TASK_CASES[@]})) || fatal "no cases selected"

if [[ -z $OUT_DIR ]]; then
    OUT_DIR="$SCRIPT_DIR/../target/corpus-out"
    mkdir -p "$OUT_DIR" 2>/dev/null || OUT_DIR=$(mktemp -d -t pgalign-corpus-out.XXXXXX)
fi
mkdir -p "$OUT_DIR" || fatal "cannot create $OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd)
for corpus in "${CORPORA[@]}"; do
    [[ $corpus == peers ]] || mkdir -p "$OUT_DIR/$corpus" || fatal "cannot create $OUT_DIR/$corpus"
done

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

export WORK OUT_DIR CORPUS_DIR REALWORLD_DIR PGALIGN CASE_TIMEOUT RUN_ID PROGRESS ROLES_LOCK

# tasks: mode, n, corpus, peer, case (n = output order: mode, then corpus, then peer/case).
# The queue runs the realworld corpus first (its cases load whole histories: the long tasks
# first keep the -j workers busy to the end), its projects interleaved so that the cases that
# take the roles lock (supabase-storage) seldom wait for each other.
n=0
: >"$WORK/tasks.long"
: >"$WORK/tasks.short"
declare -A RANK=()
for mode in "${MODE_LIST[@]}"; do
    for i in "${!TASK_CASES[@]}"; do
        n=$((n + 1))
        task=$(printf '%s\t%s\t%s\t%s\t%s' "$mode" "$n" "${TASK_CORPORA[$i]}" "${TASK_PEERS[$i]}" "${TASK_CASES[$i]}")
        if [[ ${TASK_CORPORA[$i]} == peers ]]; then
            printf '%s\0' "$task" >>"$WORK/tasks.short"
        else
            # sort key: rank within its project, then the project
            printf '%s\t%s\t%s\n' "$(printf '%06d' "$((${RANK[${TASK_CORPORA[$i]}/${TASK_PEERS[$i]}]:-0} + 1))")" \
                "${TASK_PEERS[$i]}" "$task" >>"$WORK/tasks.long"
            RANK[${TASK_CORPORA[$i]}/${TASK_PEERS[$i]}]=$((${RANK[${TASK_CORPORA[$i]}/${TASK_PEERS[$i]}]:-0} + 1))
        fi
    done
done
{
    sort -t $'\t' -k1,1 -k2,2 -s "$WORK/tasks.long" | cut -f3- | tr '\n' '\0'
    cat "$WORK/tasks.short"
} >"$WORK/tasks"

{
    echo "OUTDIR $OUT_DIR"
} | tee "$OUT_DIR/results.txt"
summary=""
for corpus in "${CORPORA[@]}"; do
    k=0
    for c in "${TASK_CORPORA[@]}"; do [[ $c == "$corpus" ]] && k=$((k + 1)); done
    ((k)) && summary+="${summary:+ + }$k $corpus"
done
echo "corpus.sh: $summary cases x ${#MODE_LIST[@]} mode(s), -j $JOBS, pgalign=$PGALIGN" >&2

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
        printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$mode" "${TASK_CORPORA[$i]}" "${TASK_PEERS[$i]}" "${TASK_CASES[$i]}" \
            "$status" "$reason" >>"$WORK/all"
    done
done

awk -F'\t' -v modes="${MODE_LIST[*]}" -v corpora="${CORPORA[*]}" -v rfile="$WORK/rates" '
function prefix(corpus) { return corpus == "peers" ? "" : corpus ":" }
function line(mode, key,   v, p, r) {
    # pass-column-order is a pass (pass= and the rate count it), shown apart at the end
    p = cnt[mode, key, "pass"] + cnt[mode, key, "pass-column-order"]
    v = p + cnt[mode, key, "apply-error"] + cnt[mode, key, "mismatch"] + cnt[mode, key, "error"]
    r = v ? 100.0 * p / v : 0
    printf "TOTAL %s %s pass=%d apply-error=%d mismatch=%d error=%d invalid-input=%d valid=%d rate=%.1f%%", \
        mode, key, p, cnt[mode, key, "apply-error"], cnt[mode, key, "mismatch"], \
        cnt[mode, key, "error"], cnt[mode, key, "invalid-input"], v, r
    if (cnt[mode, key, "harness-error"]) printf " harness-error=%d", cnt[mode, key, "harness-error"]
    printf " pass-column-order=%d\n", cnt[mode, key, "pass-column-order"]
    return sprintf("%.1f", r)
}
{
    mode = $1; corpus = $2; peer = prefix(corpus) $3; st = $5
    printf "CASE %s %s/%s %s%s\n", mode, peer, $4, st, ($6 != "" ? " " $6 : "")
    cnt[mode, peer, st]++; cnt[mode, prefix(corpus) "ALL", st]++
    if (!((mode, corpus, peer) in seen)) { seen[mode, corpus, peer] = 1; order[mode, corpus] = order[mode, corpus] " " peer }
    if (!((mode, corpus) in cseen)) { cseen[mode, corpus] = 1 }
}
END {
    nm = split(modes, ms, " ")
    nc = split(corpora, cs, " ")
    for (k = 1; k <= nm; k++) {
        m = ms[k]
        for (c = 1; c <= nc; c++) {
            if (!((m, cs[c]) in cseen)) continue
            np = split(order[m, cs[c]], ps, " ")
            for (j = 1; j <= np; j++) line(m, ps[j])
            r = line(m, prefix(cs[c]) "ALL")
            print m, cs[c], r > rfile
        }
    }
}' "$WORK/all" | tee -a "$OUT_DIR/results.txt"

echo "corpus.sh: finished in $((SECONDS - T_START))s; artifacts in $OUT_DIR" >&2

rc=0
if ((harness)); then
    echo "corpus.sh: $harness case(s) hit a harness error (see CASE ... harness-error)" >&2
    rc=1
fi
if [[ -f $WORK/rates ]]; then
    while read -r m c r; do
        [[ -n ${FLOOR[$c]:-} ]] || continue
        if awk -v r="$r" -v min="${FLOOR[$c]}" 'BEGIN { exit !(r + 0 < min + 0) }'; then
            echo "corpus.sh: mode $m, corpus $c: ALL rate $r% is below --min-rate ${FLOOR[$c]}" >&2
            rc=1
        fi
    done <"$WORK/rates"
fi
exit $rc
