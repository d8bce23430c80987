#!/usr/bin/env bash
# The phases of the CodeBuild job, called by buildspec.yml (and, on a developer's machine, by
# scripts/codebuild-local.sh through the same buildspec.yml):
#
#   scripts/codebuild-phase.sh install   a pg_dump new enough for the servers, and pgalign
#   scripts/codebuild-phase.sh build     plan; apply when PGALIGN_APPLY=true
#   scripts/codebuild-phase.sh fleet     one build of a fleet batch (see phase_fleet)
#
# Settings (environment variables of the CodeBuild project; all optional but the first two):
#   SOURCE_DB_SECRETS, TARGET_DB_SECRETS   ARNs of the Secrets Manager secrets (RDS JSON) of the
#                                          desired schema (e.g. staging) and of the one to change
#                                          (SOURCE_DATABASE_URL / TARGET_DATABASE_URL work too)
#   SOURCE_SCHEMA_DIR=schema               instead of SOURCE_DB_SECRETS: the desired schema as
#                                          SQL files in the repository (e.g. from `pgalign dump
#                                          -o schema`), loaded into a throwaway PostgreSQL server
#                                          of PGALIGN_PG_MAJOR, installed in the install phase
#   PGALIGN_SCRATCH_URL                    load SOURCE_SCHEMA_DIR on this server instead (a
#                                          postgres:// URL or secret:NAME whose user may create
#                                          databases); then no server is installed
#   PGALIGN_APPLY=true                     apply the plan; otherwise plan only
#   PGALIGN_PG_MAJOR=16                    major version of the servers: the pg_dump to install
#   PGALIGN_RELEASE_URL                    where to download a pgalign binary (scripts/release.sh
#                                          builds one that runs on standard:5.0); unset: build it
#                                          from this repository with cargo
#   PGALIGN_RELEASE_SHA256                 expected sha256 of that download
#   PGALIGN_SSLMODE, PGALIGN_SSLROOTCERT   --sslmode / --sslrootcert for both sides; the root
#                                          certificate may be an https:// URL (e.g. the RDS global
#                                          bundle), downloaded in the install phase
#   PGALIGN_ARGS                           more flags for plan and apply (e.g. --schema app --online)
#   PGALIGN_APPLY_ARGS                     more flags for apply (e.g. --allow-hazards data-loss)
#   PGALIGN_FAIL_ON_DIFF=true              a plan-only run fails when there are differences
#   PGALIGN_REHEARSE=false                 apply without rehearsing first (by default apply runs
#                                          the plan on a scratch copy of TARGET's schema, created
#                                          on TARGET's server and dropped after: the database user
#                                          needs CREATEDB there)
#   PGALIGN_REHEARSE_ON                    rehearse on this server instead (a postgres:// URL or
#                                          secret:NAME whose user may create databases; TARGET's
#                                          roles must exist there)
#
# Output, the build's artifacts: pgalign-out/{plan.sql,plan.json,report.json,report.md,result}.
#
# Exit status is the build's: plan-only runs succeed with or without differences (the log and
# pgalign-out/result say which); apply fails the build on residue (2), refused hazards (3) or
# an error (1), a plan that failed its rehearsal included (result rehearsal-failed: TARGET
# was not touched).
set -uo pipefail

phase="${1:-}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
repo="$(cd "$here/.." && pwd)"
out="pgalign-out" # buildspec.yml's artifacts section names it
major="${PGALIGN_PG_MAJOR:-16}"
install_dir="${PGALIGN_INSTALL_DIR:-/usr/local/bin}"
work="${PGALIGN_WORK:-$HOME/.cache/pgalign-codebuild}"
export PATH="$HOME/.cargo/bin:$PATH"

say() { echo "pgalign-codebuild: $*"; }
die() { say "FAILED: $*" >&2; exit 1; }
sudo_() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

_apt_updated=""
apt_install() {
  if [ -z "$_apt_updated" ]; then
    # standard:5.0 lists third-party repositories whose keys expire now and then; a failed
    # update of one of them must not stop the install of a package from another.
    sudo_ apt-get update -qq || say "warning: apt-get update reported errors; trying the install anyway"
    _apt_updated=1
  fi
  sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

# The newest pg_dump on this machine, as "MAJOR PATH" (the places pgalign itself looks).
best_pg_dump() {
  local p v best="" bestv=0
  for p in ${PG_DUMP:-} $(command -v pg_dump 2>/dev/null) /usr/lib/postgresql/*/bin/pg_dump; do
    [ -x "$p" ] || continue
    v="$("$p" --version 2>/dev/null | sed -n 's/.*(PostgreSQL) \([0-9]*\).*/\1/p')"
    [ -n "$v" ] || continue
    if [ "$v" -gt "$bestv" ]; then bestv="$v"; best="$p"; fi
  done
  [ -n "$best" ] && echo "$bestv $best"
}

install_pg_client() {
  # PGDG's own apt repository: Ubuntu 20.04 (standard:5.0) ships PostgreSQL 12 only.
  [ -r /etc/os-release ] || die "no /etc/os-release: install postgresql-client-$major by hand"
  # shellcheck disable=SC1091
  . /etc/os-release
  local codename="${VERSION_CODENAME:-}"
  [ -n "$codename" ] || die "cannot tell the distribution's codename: install postgresql-client-$major by hand"
  if ! command -v curl >/dev/null || [ ! -d /etc/ssl/certs ]; then apt_install curl ca-certificates; fi
  local key=/usr/share/postgresql-common/pgdg/apt.postgresql.org.asc
  sudo_ install -d "$(dirname "$key")"
  sudo_ curl -fsSL -o "$key" https://www.postgresql.org/media/keys/ACCC4CF8.asc \
    || die "cannot download the PGDG signing key"
  # Releases past their end of life move from apt.postgresql.org to apt-archive.postgresql.org.
  local mirror="${PGALIGN_PGDG_MIRROR:-}" m
  if [ -z "$mirror" ]; then
    for m in https://apt.postgresql.org/pub/repos/apt https://apt-archive.postgresql.org/pub/repos/apt; do
      if curl -fsI "$m/dists/$codename-pgdg/Release" >/dev/null 2>&1; then mirror="$m"; break; fi
    done
  fi
  [ -n "$mirror" ] || die "no PGDG repository for $codename found; set PGALIGN_PGDG_MIRROR"
  say "adding the PGDG repository $mirror $codename-pgdg"
  echo "deb [signed-by=$key] $mirror $codename-pgdg main" | sudo_ tee /etc/apt/sources.list.d/pgdg.list >/dev/null
  _apt_updated=""
  apt_install "postgresql-client-$major" || die "apt-get install postgresql-client-$major failed"
}

# SOURCE_SCHEMA_DIR without PGALIGN_SCRATCH_URL: pgalign starts a throwaway server of TARGET's
# major from /usr/lib/postgresql/MAJOR/bin, so the server package must be there.
install_pg_server() {
  [ -n "${SOURCE_SCHEMA_DIR:-}" ] && [ -z "${PGALIGN_SCRATCH_URL:-}" ] || return 0
  if [ -x "/usr/lib/postgresql/$major/bin/initdb" ] && [ -x "/usr/lib/postgresql/$major/bin/postgres" ]; then
    say "PostgreSQL $major server binaries found (for loading SOURCE_SCHEMA_DIR)"
    return 0
  fi
  say "installing postgresql-$major (a throwaway server loads SOURCE_SCHEMA_DIR)"
  [ -f /etc/apt/sources.list.d/pgdg.list ] || install_pg_client
  apt_install "postgresql-$major" || die "apt-get install postgresql-$major failed"
  # The package makes and starts a cluster of its own; pgalign needs only the binaries.
  if command -v pg_dropcluster >/dev/null 2>&1; then
    sudo_ pg_dropcluster --stop "$major" main >/dev/null 2>&1 || true
  fi
  [ -x "/usr/lib/postgresql/$major/bin/initdb" ] || die "postgresql-$major installed but no initdb in /usr/lib/postgresql/$major/bin"
}

pgalign_bin() {
  if [ -n "${PGALIGN_BIN:-}" ]; then echo "$PGALIGN_BIN"
  elif [ -x "$install_dir/pgalign" ]; then echo "$install_dir/pgalign"
  else command -v pgalign 2>/dev/null || true
  fi
}

install_pgalign() {
  if [ -n "${PGALIGN_BIN:-}" ]; then
    [ -x "$PGALIGN_BIN" ] || die "PGALIGN_BIN=$PGALIGN_BIN is not an executable"
    say "using pgalign at $PGALIGN_BIN"
    return
  fi
  sudo_ mkdir -p "$install_dir"
  if [ -n "${PGALIGN_RELEASE_URL:-}" ]; then
    say "downloading pgalign from $PGALIGN_RELEASE_URL"
    local tmp
    tmp="$(mktemp)"
    curl -fsSL --retry 3 -o "$tmp" "$PGALIGN_RELEASE_URL" || die "cannot download $PGALIGN_RELEASE_URL"
    if [ -n "${PGALIGN_RELEASE_SHA256:-}" ]; then
      echo "$PGALIGN_RELEASE_SHA256  $tmp" | sha256sum -c --quiet - \
        || die "the download's sha256 is not PGALIGN_RELEASE_SHA256"
    fi
    sudo_ install -m 0755 "$tmp" "$install_dir/pgalign"
    rm -f "$tmp"
  else
    # From source: this repository, with Rust from rustup when the image has none.
    local profile="${PGALIGN_BUILD_PROFILE:-release}"
    if ! command -v cargo >/dev/null 2>&1; then
      say "installing Rust (rustup, minimal profile)"
      curl -fsSL https://sh.rustup.rs | sh -s -- -y --profile minimal >/dev/null || die "rustup failed"
    fi
    # pg_query's bindings are generated with libclang and need clang's own headers.
    if ! command -v clang >/dev/null 2>&1 || ! ls /usr/lib/llvm-*/lib/clang/*/include/stdbool.h >/dev/null 2>&1; then
      apt_install clang libclang-dev || die "cannot install clang and libclang-dev (needed to build pg_query)"
    fi
    say "building pgalign from $repo (cargo, profile $profile)"
    # jemalloc, the allocator, builds with make.
    command -v make >/dev/null 2>&1 || apt_install make || die "cannot install make (needed to build jemalloc)"
    (cd "$repo" && cargo build --quiet --locked --profile "$profile" --bin pgalign) || die "cargo build failed"
    local dir="$profile"
    [ "$profile" = dev ] && dir=debug
    local target="${CARGO_TARGET_DIR:-$repo/target}"
    sudo_ install -m 0755 "$target/$dir/pgalign" "$install_dir/pgalign"
  fi
  "$install_dir/pgalign" --version >/dev/null || die "the installed pgalign does not run on this image"
  say "installed $("$install_dir/pgalign" --version) at $install_dir/pgalign"
}

# A root certificate given as a URL is fetched once, in the install phase.
rootcert_path() {
  local c="${PGALIGN_SSLROOTCERT:-}"
  case "$c" in
    https://*|http://*) echo "$work/$(basename "$c")" ;;
    *) echo "$c" ;;
  esac
}

phase_install() {
  mkdir -p "$out" "$work"
  # Stays behind, as the build's one artifact, if this phase fails.
  echo install-failed >"$out/result"
  local found
  found="$(best_pg_dump || true)"
  if [ -n "$found" ] && [ "${found%% *}" -ge "$major" ]; then
    say "pg_dump ${found%% *} at ${found#* } is new enough for PostgreSQL $major servers"
  else
    say "no pg_dump $major or newer (have: ${found:-none}); installing postgresql-client-$major"
    install_pg_client
    found="$(best_pg_dump || true)"
    if [ -z "$found" ] || [ "${found%% *}" -lt "$major" ]; then
      die "postgresql-client-$major installed but no pg_dump $major found"
    fi
  fi
  install_pg_server
  install_pgalign
  case "${PGALIGN_SSLROOTCERT:-}" in
    https://*|http://*)
      say "downloading the root certificate $PGALIGN_SSLROOTCERT"
      curl -fsSL --retry 3 -o "$(rootcert_path)" "$PGALIGN_SSLROOTCERT" || die "cannot download $PGALIGN_SSLROOTCERT"
      ;;
  esac
  rm -f "$out/result"
}

# One word for what happened, for the log, the artifacts and CodePipeline (PGALIGN_RESULT).
result() {
  echo "$1" >"$out/result"
  say "result: $1"
}

phase_build() {
  mkdir -p "$out"
  rm -f "$out/plan.sql" "$out/plan.json" "$out/report.json" "$out/report.md" "$out/result"
  local bin
  bin="$(pgalign_bin)"
  [ -n "$bin" ] || { result error; die "pgalign is not installed: run the install phase first"; }
  if [ -z "${SOURCE_DB_SECRETS:-}${SOURCE_DATABASE_URL:-}${SOURCE_SCHEMA_DIR:-}" ] || [ -z "${TARGET_DB_SECRETS:-}${TARGET_DATABASE_URL:-}" ]; then
    result error
    die "set SOURCE_DB_SECRETS (or SOURCE_SCHEMA_DIR) and TARGET_DB_SECRETS (the ARNs of the two databases' secrets) on the CodeBuild project"
  fi
  # The build log is no terminal: a plain line as each stage (dumps, preflight checks) ends.
  local common=(--progress "${PGALIGN_PROGRESS:-plain}")
  [ -n "${PGALIGN_SSLMODE:-}" ] && common+=(--sslmode "$PGALIGN_SSLMODE")
  [ -n "${PGALIGN_SSLROOTCERT:-}" ] && common+=(--sslrootcert "$(rootcert_path)")
  local extra=() apply_extra=()
  read -r -a extra <<<"${PGALIGN_ARGS:-}"
  read -r -a apply_extra <<<"${PGALIGN_APPLY_ARGS:-}"

  if [ -z "${SOURCE_DB_SECRETS:-}${SOURCE_DATABASE_URL:-}" ]; then
    say "source: the SQL files in ${SOURCE_SCHEMA_DIR}"
  else
    say "source: ${SOURCE_DB_SECRETS:-SOURCE_DATABASE_URL}"
  fi
  say "target: ${TARGET_DB_SECRETS:-TARGET_DATABASE_URL}"
  say "pgalign plan"
  "$bin" plan --exit-code "${common[@]}" "${extra[@]}" --format json -o "$out/plan.json"
  local rc=$?
  case $rc in
    0|2) ;;
    *) result error; die "pgalign plan failed (exit $rc)" ;;
  esac
  # plan.json is what apply runs (and it refuses if TARGET changed since); plan.sql is the same
  # plan as a script for people to read, from a second run.
  "$bin" plan "${common[@]}" "${extra[@]}" -o "$out/plan.sql" || { result error; die "pgalign plan (sql) failed"; }
  echo "----- plan.sql -----"
  cat "$out/plan.sql"
  echo "--------------------"

  if [ "${PGALIGN_APPLY:-false}" != "true" ]; then
    if [ $rc -eq 2 ]; then
      result differences
      say "TARGET differs from SOURCE: the plan above would align it (set PGALIGN_APPLY=true to apply)"
      if [ "${PGALIGN_FAIL_ON_DIFF:-false}" = "true" ]; then
        say "FAILED: differences found and PGALIGN_FAIL_ON_DIFF=true"
        exit 2
      fi
    else
      result no-differences
      say "TARGET's schema already equals SOURCE's"
    fi
    return 0
  fi

  local rehearse=()
  if [ -n "${PGALIGN_REHEARSE_ON:-}" ]; then
    rehearse=(--rehearse-on "$PGALIGN_REHEARSE_ON")
  elif [ "${PGALIGN_REHEARSE:-true}" != "false" ]; then
    rehearse=(--rehearse)
  fi
  if [ ${#rehearse[@]} -gt 0 ]; then
    say "pgalign apply (the reviewed plan.json), rehearsed first on a scratch copy of TARGET's schema"
  else
    say "pgalign apply (the reviewed plan.json), not rehearsed (PGALIGN_REHEARSE=false)"
  fi
  "$bin" apply --plan "$out/plan.json" "${common[@]}" "${extra[@]}" "${rehearse[@]}" "${apply_extra[@]}" \
    --report "$out/report.json" --report-md "$out/report.md"
  rc=$?
  case $rc in
    0) result applied; say "applied; TARGET verified equal to SOURCE" ;;
    2) result residue; say "FAILED: applied, but TARGET still differs from SOURCE (see report.md)" ;;
    3) result refused; say "FAILED: refused: the plan has hazards that were not allowed; review plan.sql and allow them with PGALIGN_APPLY_ARGS=\"--allow-hazards LIST\"" ;;
    *)
      # Only the rehearsal's section of the report has "passed".
      if grep -q '"passed": false' "$out/report.json" 2>/dev/null; then
        result rehearsal-failed; say "FAILED: the plan failed its rehearsal; TARGET was not touched (see report.md)"
      else
        result error; say "FAILED: pgalign apply failed (exit $rc)"
      fi
      ;;
  esac
  [ -f "$out/report.md" ] && { echo "----- report.md -----"; cat "$out/report.md"; echo "---------------------"; }
  exit $rc
}

# One build of a fleet batch (the buildspec `pgalign fleet codebuild` writes): this build's
# share of the members (PGALIGN_FLEET_SHARD=I/N) of the members file PGALIGN_FLEET_TARGETS,
# with PGALIGN_FLEET_ACTION (apply, or diff for a drift check); SOURCE as for a single build.
# Its report is pgalign-out/fleet-I.json and .md.
phase_fleet() {
  mkdir -p "$out"
  local bin
  bin="$(pgalign_bin)"
  [ -n "$bin" ] || { result error; die "pgalign is not installed: run the install phase first"; }
  [ -n "${PGALIGN_FLEET_TARGETS:-}" ] || { result error; die "set PGALIGN_FLEET_TARGETS (the members file, a path in the repository)"; }
  [ -n "${SOURCE_DB_SECRETS:-}${SOURCE_DATABASE_URL:-}" ] || { result error; die "set SOURCE_DB_SECRETS (the ARN of the source database's secret) on the CodeBuild project"; }
  local shard="${PGALIGN_FLEET_SHARD:-1/1}" action="${PGALIGN_FLEET_ACTION:-apply}"
  case "$action" in diff|apply) ;; *) result error; die "PGALIGN_FLEET_ACTION must be diff or apply, not $action" ;; esac
  local common=(--progress "${PGALIGN_PROGRESS:-plain}")
  [ -n "${PGALIGN_SSLMODE:-}" ] && common+=(--sslmode "$PGALIGN_SSLMODE")
  [ -n "${PGALIGN_SSLROOTCERT:-}" ] && common+=(--sslrootcert "$(rootcert_path)")
  local extra=() apply_extra=() rehearse=()
  read -r -a extra <<<"${PGALIGN_ARGS:-}"
  if [ "$action" = apply ]; then
    read -r -a apply_extra <<<"${PGALIGN_APPLY_ARGS:-}"
    if [ -n "${PGALIGN_REHEARSE_ON:-}" ]; then rehearse=(--rehearse-on "$PGALIGN_REHEARSE_ON")
    elif [ "${PGALIGN_REHEARSE:-true}" != "false" ]; then rehearse=(--rehearse); fi
  fi
  local n="${shard%%/*}"
  say "pgalign fleet $action, shard $shard of $PGALIGN_FLEET_TARGETS"
  "$bin" fleet "$action" --targets "$PGALIGN_FLEET_TARGETS" --shard "$shard" "${common[@]}" \
    "${extra[@]}" "${rehearse[@]}" "${apply_extra[@]}" \
    --report "$out/fleet-$n.json" --report-md "$out/fleet-$n.md"
  local rc=$?
  case $rc in
    0) result "$([ "$action" = apply ] && echo applied || echo no-differences)" ;;
    2) result "$([ "$action" = apply ] && echo residue || echo differences)" ;;
    3) result refused ;;
    *) result error ;;
  esac
  [ -f "$out/fleet-$n.md" ] && { echo "----- fleet-$n.md -----"; cat "$out/fleet-$n.md"; echo "-----------------------"; }
  # A drift check succeeds with differences unless asked to fail on them, as a single build.
  if [ "$action" = diff ] && [ $rc -eq 2 ] && [ "${PGALIGN_FAIL_ON_DIFF:-false}" != "true" ]; then rc=0; fi
  exit $rc
}

case "$phase" in
  install) phase_install ;;
  build) phase_build ;;
  fleet) phase_fleet ;;
  *) echo "usage: scripts/codebuild-phase.sh install|build|fleet" >&2; exit 2 ;;
esac
