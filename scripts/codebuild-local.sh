#!/usr/bin/env bash
# Runs buildspec.yml on this machine as CodeBuild would, against two databases on the local
# PostgreSQL whose credentials sit in moto's Secrets Manager: the buildspec's own commands, its
# env defaults, its phases in CodeBuild's order and failure rules, its artifacts section, and its
# exported variables. Then checks what each run produced.
#
#   scripts/codebuild-local.sh
#
# Uses PGALIGN_TEST_HOST/PORT/USER (default 127.0.0.1:5432, postgres); creates databases named
# pgalign_cbl_<pid>_* and drops them after. Builds pgalign (debug) unless PGALIGN_BIN is set.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
repo="$(cd "$here/.." && pwd -P)"
cd "$repo"
# shellcheck source=setup.sh
. "$here/setup.sh"

host="${PGALIGN_TEST_HOST:-127.0.0.1}"
port="${PGALIGN_TEST_PORT:-5432}"
user="${PGALIGN_TEST_USER:-postgres}"
say() { echo "codebuild-local: $*"; }
fail() { say "FAILED: $*" >&2; exit 1; }
psql_() { psql -X -q -v ON_ERROR_STOP=1 -h "$host" -p "$port" -U "$user" "$@"; }

psql_ -d postgres -Atc 'select 1' >/dev/null 2>&1 || fail "no PostgreSQL at $host:$port as $user"
server_major="$(psql_ -d postgres -Atc 'show server_version_num')"
server_major=$((server_major / 10000))

if [ -z "${PGALIGN_BIN:-}" ]; then
  cargo build --quiet --bin pgalign
  PGALIGN_BIN="$CARGO_TARGET_DIR/debug/pgalign"
fi
[ -x "$PGALIGN_BIN" ] || fail "no pgalign at $PGALIGN_BIN"
built_bin="$PGALIGN_BIN"
unset PGALIGN_BIN # the runs below install pgalign the way the buildspec does

tmp="$(mktemp -d "${TMPDIR:-/tmp}/pgalign-cbl.XXXXXX")"
src_db="pgalign_cbl_$$_src"
tgt_db="pgalign_cbl_$$_tgt"
PGALIGN_MOTO_PID=""
cleanup() {
  set +e
  [ -n "$PGALIGN_MOTO_PID" ] && "$here/moto.sh" stop "$PGALIGN_MOTO_PID"
  for d in "$src_db" "$tgt_db"; do psql_ -d postgres -c "DROP DATABASE IF EXISTS $d WITH (FORCE)" >/dev/null 2>&1; done
  rm -rf "$tmp"
}
trap cleanup EXIT

# Only moto: never a real AWS account, whatever this shell had.
unset AWS_PROFILE AWS_DEFAULT_PROFILE AWS_SESSION_TOKEN AWS_ROLE_ARN AWS_WEB_IDENTITY_TOKEN_FILE \
  AWS_CONTAINER_CREDENTIALS_RELATIVE_URI AWS_CONTAINER_CREDENTIALS_FULL_URI \
  PGPASSWORD PGHOST PGPORT PGUSER PGDATABASE PGSSLMODE \
  SOURCE_DATABASE_URL TARGET_DATABASE_URL SOURCE_DB_SECRETS TARGET_DB_SECRETS SOURCE_SCHEMA_DIR \
  PGALIGN_SCRATCH_URL \
  PGALIGN_APPLY PGALIGN_ARGS PGALIGN_APPLY_ARGS PGALIGN_FAIL_ON_DIFF PGALIGN_RELEASE_URL \
  PGALIGN_RELEASE_SHA256 PGALIGN_SSLMODE PGALIGN_SSLROOTCERT PGALIGN_REHEARSE PGALIGN_REHEARSE_ON
export AWS_CONFIG_FILE=/nonexistent/aws-config AWS_SHARED_CREDENTIALS_FILE=/nonexistent/aws-credentials
eval "$("$here/moto.sh" start)"
py="$PGALIGN_PYTHON"

psql_ -d postgres -c "CREATE DATABASE $src_db" -c "CREATE DATABASE $tgt_db" >/dev/null
psql_ -d "$tgt_db" -c "CREATE TABLE orders (id int PRIMARY KEY, note text);" >/dev/null
psql_ -d "$src_db" -c "CREATE TABLE orders (id int PRIMARY KEY, note text);
  CREATE TABLE items (id int PRIMARY KEY, order_id int);
  CREATE VIEW order_notes AS SELECT id, note FROM orders;
  COMMENT ON TABLE items IS 'added by the CodeBuild job';" >/dev/null

secret() { # NAME DB -> ARN
  local pw="cbl-pw-$$-$RANDOM$RANDOM"
  "$here/moto.sh" put "$1" "{\"username\":\"$user\",\"password\":\"$pw\",\"engine\":\"postgres\",\"host\":\"$host\",\"port\":$port,\"dbname\":\"$2\",\"dbInstanceIdentifier\":\"local\"}"
}
src_arn="$(secret "pgalign-cbl-$$/staging" "$src_db")"
tgt_arn="$(secret "pgalign-cbl-$$/production" "$tgt_db")"

# CodeBuild, emulated: the buildspec's commands in one bash (exports persist between them, as in
# buildspec version 0.2), phases install, pre_build, build, post_build; a failed install or
# pre_build skips the rest, a failed build still runs post_build; `finally` always runs after
# its phase; then the artifacts section. Exit 0 when the build SUCCEEDED.
emulate() { # SRC_DIR [BUILDSPEC]
  "$py" - "${2:-$repo/buildspec.yml}" "$1" <<'PY'
import glob, os, shlex, shutil, subprocess, sys, yaml

spec_path, src = sys.argv[1], sys.argv[2]
spec = yaml.safe_load(open(spec_path))
assert str(spec.get("version")) == "0.2", "buildspec version must be 0.2"
env = spec.get("env") or {}
lines = ["set +e +u", "__stop=0", "__failed=0"]
for k, v in (env.get("variables") or {}).items():
    # The project's environment variables (here: this shell's) win over the buildspec's.
    lines.append(f'if [ -z "${{{k}+x}}" ]; then export {k}={shlex.quote(str(v))}; fi')
lines += ["export CODEBUILD_SRC_DIR=\"$PWD\"", "export CODEBUILD_BUILD_ID=local:$$",
          "export CODEBUILD_BUILD_SUCCEEDING=1"]

def block(phase, cmds, what):
    out = ["__ok=1"]
    for c in cmds or []:
        out += ['if [ $__ok = 1 ]; then',
                f'echo {shlex.quote(f"[Container] {phase}: running command " + c.strip())}',
                c,
                '__rc=$?',
                f'if [ $__rc != 0 ]; then echo "[Container] {phase}: command did not exit successfully: exit status $__rc"; __ok=0; fi',
                'fi']
    out.append(f"__{what}=$__ok")
    return out

phases = spec.get("phases") or {}
for name in ["install", "pre_build", "build", "post_build"]:
    ph = phases.get(name)
    if not ph:
        continue
    gate = "[ $__stop = 0 ]" if name != "post_build" else "[ $__stop != 2 ]"
    lines.append(f"if {gate}; then")
    lines.append(f'echo "[Container] entering phase {name.upper()}"')
    lines += block(name.upper(), ph.get("commands"), "cmds")
    lines += block(name.upper() + " finally", ph.get("finally"), "fin")
    lines.append('if [ $__cmds = 0 ] || [ $__fin = 0 ]; then')
    lines.append(f'  echo "[Container] phase {name.upper()} FAILED"; __failed=1; export CODEBUILD_BUILD_SUCCEEDING=0')
    # install/pre_build failures end the build; a build failure still runs post_build.
    lines.append("  __stop=2" if name in ("install", "pre_build") else "  __stop=1")
    lines.append("fi")
    lines.append("fi")
exports = env.get("exported-variables") or []
for k in exports:
    lines.append(f'printf "%s=%s\\n" {k} "${{{k}-}}" >> .codebuild-exported')
lines.append("exit $__failed")
script = "\n".join(lines) + "\n"
r = subprocess.run(["bash", "-c", script], cwd=src)
ok = r.returncode == 0

art = spec.get("artifacts") or {}
if art:
    base = os.path.join(src, art.get("base-directory", "."))
    dest = os.path.join(src, ".codebuild-artifacts")
    os.makedirs(dest, exist_ok=True)
    found = []
    for pattern in art.get("files") or []:
        for f in glob.glob(os.path.join(base, pattern), recursive=True):
            if os.path.isfile(f):
                rel = os.path.relpath(f, base)
                target = os.path.basename(f) if art.get("discard-paths") in (True, "yes") else rel
                os.makedirs(os.path.dirname(os.path.join(dest, target)) or dest, exist_ok=True)
                shutil.copy(f, os.path.join(dest, target))
                found.append(target)
    if not found:
        print("[Container] CLIENT_ERROR: no matching artifact paths found")
        ok = False
    print("[Container] artifacts: " + " ".join(sorted(found)))
print("[Container] build " + ("SUCCEEDED" if ok else "FAILED"))
sys.exit(0 if ok else 1)
PY
}

runs=0
# run NAME EXPECT(SUCCEEDED|FAILED) [VAR=VALUE...]: a build in its own source directory.
run() { run_spec "$repo/buildspec.yml" "$@"; }
# run_spec BUILDSPEC NAME EXPECT [VAR=VALUE...]: the same with another buildspec (a batch's).
run_spec() {
  local spec="$1" name="$2" expect="$3"
  shift 3
  local dir="$tmp/$name"
  mkdir -p "$dir"
  ln -s "$repo/scripts" "$dir/scripts"
  ln -s "$repo/buildspec.yml" "$dir/buildspec.yml"
  say "=== run $name (expect $expect): $*"
  local status=SUCCEEDED
  (
    cd "$dir"
    export SOURCE_DB_SECRETS="$src_arn" TARGET_DB_SECRETS="$tgt_arn" PGALIGN_PG_MAJOR="$server_major" \
      PGALIGN_INSTALL_DIR="$dir/bin" PGALIGN_WORK="$dir/work"
    for kv in "$@"; do export "${kv?}"; done
    emulate "$dir" "$spec"
  ) >"$dir/log" 2>&1 || status=FAILED
  sed 's/^/    /' "$dir/log"
  [ "$status" = "$expect" ] || fail "run $name: build $status, expected $expect (log above)"
  runs=$((runs + 1))
}
artifact() { echo "$tmp/$1/.codebuild-artifacts/$2"; }
exported() { sed -n "s/^$2=//p" "$tmp/$1/.codebuild-exported"; }
has_artifacts() { # RUN FILE...: exactly these artifacts
  local want got
  want="$(printf '%s\n' "${@:2}" | sort | tr '\n' ' ')"
  got="$(ls "$tmp/$1/.codebuild-artifacts" | sort | tr '\n' ' ')"
  [ "$want" = "$got" ] || fail "run $1: artifacts are [$got], expected [$want]"
}

# 1. Plan only, pgalign built from this repository with cargo (the path without a release URL).
run plan-only SUCCEEDED PGALIGN_BUILD_PROFILE=dev
has_artifacts plan-only plan.json plan.sql result
[ "$(exported plan-only PGALIGN_RESULT)" = differences ] || fail "plan-only: PGALIGN_RESULT=$(exported plan-only PGALIGN_RESULT)"
grep -q 'CREATE TABLE public.items' "$(artifact plan-only plan.sql)" || fail "plan-only: plan.sql lacks CREATE TABLE public.items"
grep -q 'TARGET differs from SOURCE' "$tmp/plan-only/log" || fail "plan-only: the differences are not reported"
"$py" -c 'import json,sys; json.load(open(sys.argv[1]))' "$(artifact plan-only plan.json)" || fail "plan.json is not JSON"
[ "$(psql_ -d "$tgt_db" -Atc "select count(*) from pg_class where relname = 'items'")" = 0 ] \
  || fail "plan-only changed the target"

# 2. Drift detection: the same, failing on differences.
run fail-on-diff FAILED PGALIGN_BIN="$built_bin" PGALIGN_FAIL_ON_DIFF=true
[ "$(exported fail-on-diff PGALIGN_RESULT)" = differences ] || fail "fail-on-diff: wrong PGALIGN_RESULT"

# 3. A secret that does not exist: the build fails and says which.
run missing-secret FAILED PGALIGN_BIN="$built_bin" \
  SOURCE_DB_SECRETS="arn:aws:secretsmanager:${AWS_REGION}:123456789012:secret:pgalign-cbl-nope-AbCdEf"
grep -q 'pgalign: error: .*pgalign-cbl-nope.* not found' "$tmp/missing-secret/log" || fail "missing-secret: no clear error"
[ "$(exported missing-secret PGALIGN_RESULT)" = error ] || fail "missing-secret: wrong PGALIGN_RESULT"

# 4. SOURCE as SQL files in the repository (SOURCE_SCHEMA_DIR, from `pgalign dump`), loaded
# into a throwaway server of PGALIGN_PG_MAJOR that the run starts and removes.
mkdir -p "$tmp/schema-files"
"$built_bin" dump --source "postgres://$user@$host:$port/$src_db" -o "$tmp/schema-files/schema" 2>/dev/null \
  || fail "pgalign dump of the source failed"
# The server's directory goes in TMPDIR: one of this run's own, which the server's user (when
# run as root) can reach.
server_tmp="$(mktemp -d /tmp/pgalign-cbl-server.XXXXXX)"
chmod 755 "$server_tmp"
run schema-files SUCCEEDED PGALIGN_BIN="$built_bin" SOURCE_DB_SECRETS= SOURCE_SCHEMA_DIR=schema TMPDIR="$server_tmp"
[ "$(exported schema-files PGALIGN_RESULT)" = differences ] || fail "schema-files: PGALIGN_RESULT=$(exported schema-files PGALIGN_RESULT)"
grep -q 'CREATE TABLE public.items' "$(artifact schema-files plan.sql)" || fail "schema-files: plan.sql lacks CREATE TABLE public.items"
grep -q 'source: the SQL files in schema' "$tmp/schema-files/log" || fail "schema-files: the log does not name the files"
grep -q 'starting a throwaway PostgreSQL' "$tmp/schema-files/log" || fail "schema-files: no throwaway server"
[ -z "$(ls -A "$server_tmp")" ] || fail "schema-files: the throwaway server left $(ls "$server_tmp")"
rmdir "$server_tmp"

if ! "$built_bin" apply --help >/dev/null 2>&1; then
  say "SKIP: the apply runs: \`pgalign apply\` does not exist in this build (pgalign apply --help failed)"
  say "all $runs plan-only runs behaved as expected"
  exit 0
fi

# 5. Apply, pgalign downloaded from a release URL (here a file:// one) with its checksum.
sum="$(sha256sum "$built_bin" | cut -d' ' -f1)"
run apply SUCCEEDED PGALIGN_APPLY=true PGALIGN_RELEASE_URL="file://$built_bin" PGALIGN_RELEASE_SHA256="$sum"
has_artifacts apply plan.json plan.sql report.json report.md result
[ "$(exported apply PGALIGN_RESULT)" = applied ] || fail "apply: PGALIGN_RESULT=$(exported apply PGALIGN_RESULT)"
"$py" -c 'import json,sys; json.load(open(sys.argv[1]))' "$(artifact apply report.json)" || fail "report.json is not JSON"
# Rehearsed by default, and the report says how it went.
"$py" -c 'import json,sys; r=json.load(open(sys.argv[1]))["rehearsal"]; assert r["passed"] and r["steps"], r' \
  "$(artifact apply report.json)" || fail "apply: report.json shows no passed rehearsal"
grep -q "Rehearsal on a scratch copy" "$(artifact apply report.md)" || fail "apply: report.md shows no rehearsal"
[ "$(psql_ -d "$tgt_db" -Atc "select count(*) from pg_class where relname in ('items', 'order_notes')")" = 2 ] \
  || fail "apply did not change the target"

# 6. Nothing left to do.
run aligned SUCCEEDED PGALIGN_BIN="$built_bin"
[ "$(exported aligned PGALIGN_RESULT)" = no-differences ] || fail "aligned: PGALIGN_RESULT=$(exported aligned PGALIGN_RESULT)"

# 7. A hazard: TARGET has a column SOURCE lacks. Refused (exit 3) unless allowed.
psql_ -d "$tgt_db" -c "ALTER TABLE orders ADD COLUMN legacy text" >/dev/null
run refused FAILED PGALIGN_BIN="$built_bin" PGALIGN_APPLY=true
[ "$(exported refused PGALIGN_RESULT)" = refused ] || fail "refused: PGALIGN_RESULT=$(exported refused PGALIGN_RESULT)"
grep -q 'data-loss' "$tmp/refused/log" || fail "refused: the log does not name the hazard"
[ "$(psql_ -d "$tgt_db" -Atc "select count(*) from information_schema.columns where column_name = 'legacy'")" = 1 ] \
  || fail "a refused apply changed the target"
run allowed SUCCEEDED PGALIGN_BIN="$built_bin" PGALIGN_APPLY=true PGALIGN_APPLY_ARGS="--allow-hazards data-loss,access-exclusive-lock"
[ "$(exported allowed PGALIGN_RESULT)" = applied ] || fail "allowed: PGALIGN_RESULT=$(exported allowed PGALIGN_RESULT)"
[ "$(psql_ -d "$tgt_db" -Atc "select count(*) from information_schema.columns where column_name = 'legacy'")" = 0 ] \
  || fail "allowed: the column is still there"

# 8. A plan that fails its rehearsal (a type change with no cast; preflight, which would say
# so first, is skipped): the build fails, TARGET untouched. PGALIGN_REHEARSE=false skips it.
psql_ -d "$tgt_db" -c "ALTER TABLE orders ADD COLUMN pos point" >/dev/null
psql_ -d "$src_db" -c "ALTER TABLE orders ADD COLUMN pos integer" >/dev/null
run rehearsal-failed FAILED PGALIGN_BIN="$built_bin" PGALIGN_APPLY=true PGALIGN_APPLY_ARGS="--allow-all-hazards --no-preflight"
[ "$(exported rehearsal-failed PGALIGN_RESULT)" = rehearsal-failed ] \
  || fail "rehearsal-failed: PGALIGN_RESULT=$(exported rehearsal-failed PGALIGN_RESULT)"
grep -q 'rehearsal: step .*cannot cast type point to integer' "$tmp/rehearsal-failed/log" \
  || fail "rehearsal-failed: the log does not name the step and the error"
grep -q 'Rehearsal on a scratch copy of TARGET.s schema: ❌ failed' "$(artifact rehearsal-failed report.md)" \
  || fail "rehearsal-failed: report.md does not show the failed rehearsal"
run unrehearsed FAILED PGALIGN_BIN="$built_bin" PGALIGN_APPLY=true PGALIGN_REHEARSE=false PGALIGN_APPLY_ARGS="--allow-all-hazards --no-preflight"
[ "$(exported unrehearsed PGALIGN_RESULT)" = error ] || fail "unrehearsed: PGALIGN_RESULT=$(exported unrehearsed PGALIGN_RESULT)"
"$py" -c 'import json,sys; assert "rehearsal" not in json.load(open(sys.argv[1]))' "$(artifact unrehearsed report.json)" \
  || fail "unrehearsed: the report shows a rehearsal"
[ "$(psql_ -d "$tgt_db" -Atc "select format_type(atttypid, atttypmod) from pg_attribute where attrelid = 'orders'::regclass and attname = 'pos'")" = point ] \
  || fail "a failed rehearsal or apply changed the target"

# 8. A fleet as a CodeBuild batch: `pgalign fleet codebuild` writes the batch buildspec; each
# build of its build-list runs here with the variables the batch gives it (its shard), applies
# to its share of three members (secrets in moto), and uploads its report; `fleet merge-reports` makes
# one report of the shards'.
fleet_dbs=()
members="$tmp/fleet.txt"
: >"$members"
for i in 1 2 3; do
  db="pgalign_cbl_$$_m$i"
  fleet_dbs+=("$db")
  psql_ -d postgres -c "CREATE DATABASE $db" >/dev/null
  echo "m$i $(secret "pgalign-cbl-$$/member-$i" "$db")" >>"$members"
done
cleanup_fleet() { for d in "${fleet_dbs[@]}"; do psql_ -d postgres -c "DROP DATABASE IF EXISTS $d WITH (FORCE)" >/dev/null 2>&1; done; }
trap 'cleanup_fleet; cleanup' EXIT
(cd "$tmp" && "$built_bin" fleet codebuild --targets fleet.txt --shards 2 -o "$tmp/batch.yml") \
  || fail "fleet codebuild failed"
builds="$("$py" -c 'import sys, yaml
spec = yaml.safe_load(open(sys.argv[1]))
for b in spec["batch"]["build-list"]:
    print(b["identifier"], " ".join(f"{k}={v}" for k, v in b["env"]["variables"].items()))' "$tmp/batch.yml")"
[ "$(wc -l <<<"$builds")" = 2 ] || fail "the batch buildspec does not list 2 builds: $builds"
reports=()
while read -r id vars; do
  mkdir -p "$tmp/$id"
  cp "$members" "$tmp/$id/fleet.txt"
  # shellcheck disable=SC2086
  run_spec "$tmp/batch.yml" "$id" SUCCEEDED PGALIGN_BIN="$built_bin" PGALIGN_APPLY_ARGS="--allow-all-hazards" $vars
  n="${id#shard_}"
  [ -f "$(artifact "$id" "fleet-$n.json")" ] || fail "$id: no fleet-$n.json artifact"
  reports+=(--from "$(artifact "$id" "fleet-$n.json")")
done <<<"$builds"
"$built_bin" fleet merge-reports "${reports[@]}" --report-md "$tmp/fleet.md" >"$tmp/merge.out" || fail "fleet merge: exit $? ($(cat "$tmp/merge.out"))"
grep -q '^3 member(s): 3 applied$' "$tmp/merge.out" || fail "fleet merge: $(cat "$tmp/merge.out")"
for db in "${fleet_dbs[@]}"; do
  [ "$(psql_ -d "$db" -Atc "select count(*) from pg_class where relname = 'items'")" = 1 ] || fail "fleet: $db was not aligned"
done

say "all $runs runs behaved as expected"
