#!/usr/bin/env bash
# Sourced by the other scripts: installs what building and testing pgalign needs when it is
# missing (Debian/Ubuntu packages), and points cargo at a build directory outside the clone so
# repeated runs on one machine reuse it.

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/pgalign-target}"
export PATH="$HOME/.cargo/bin:$PATH"

_pgalign_apt_updated=""
pgalign_apt_install() {
  # apt-get only when something is missing; `apt-get update` once per run.
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "pgalign setup: missing $*; install them with your package manager" >&2
    return 1
  fi
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  if [ -z "$_pgalign_apt_updated" ]; then
    $sudo apt-get update -qq >/dev/null
    _pgalign_apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

pgalign_setup_build() {
  command -v cargo >/dev/null 2>&1 || { echo "pgalign setup: cargo not found: install Rust (rustup.rs)" >&2; return 1; }
  # pg_query generates its bindings with libclang and needs clang's own headers (stdbool.h).
  local need=()
  command -v clang >/dev/null 2>&1 || need+=(clang)
  # jemalloc (the allocator, tikv-jemalloc-sys) builds with its own configure and make.
  command -v make >/dev/null 2>&1 || need+=(make)
  ls /usr/lib/llvm-*/lib/libclang.so* /usr/lib/x86_64-linux-gnu/libclang*.so* >/dev/null 2>&1 && \
    ls /usr/lib/llvm-*/lib/clang/*/include/stdbool.h >/dev/null 2>&1 || need+=(libclang-dev)
  if [ ${#need[@]} -gt 0 ]; then
    echo "pgalign setup: installing ${need[*]}" >&2
    pgalign_apt_install "${need[@]}"
  fi
}

pgalign_setup_client() {
  # pg_dump / pg_restore / psql. Debian's postgresql-client-N go to /usr/lib/postgresql/N/bin.
  if ! command -v pg_dump >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/pg_dump >/dev/null 2>&1; then
    echo "pgalign setup: installing postgresql-client" >&2
    pgalign_apt_install postgresql-client
  fi
}

pgalign_build() {
  pgalign_setup_build
  cargo build --quiet --bin pgalign
  PGALIGN_BIN="$CARGO_TARGET_DIR/debug/pgalign"
  export PGALIGN_BIN
}
