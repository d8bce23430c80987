#!/usr/bin/env bash
# Builds a release pgalign that runs on AWS CodeBuild's aws/codebuild/standard:5.0 image
# (Ubuntu 20.04, glibc 2.31). A plain `cargo build --release` here links against this machine's
# newer glibc (2.34+ symbols), and such a binary fails on the image with "GLIBC_2.34 not found".
# cargo-zigbuild links against a chosen glibc version through zig's bundled libc stubs instead.
#
#   scripts/release.sh                 -> $PGALIGN_DIST (default ~/.cache/pgalign-release/dist)/
#                                         pgalign-x86_64-linux-gnu-glibc2.31 (+ .sha256)
#   PGALIGN_GLIBC=2.28 scripts/release.sh
#
# Needs: cargo (the host target x86_64-unknown-linux-gnu only: no extra rustup target), python3
# with pip. Installs when missing: cargo-zigbuild (crates.io) and zig (PyPI package `ziglang`,
# which cargo-zigbuild finds as `python3 -m ziglang`). Takes 10-15 minutes on 2 cores.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here/.."

glibc="${PGALIGN_GLIBC:-2.31}"
triple="x86_64-unknown-linux-gnu"
# A separate target directory: release artefacts built with zig's linker must not invalidate
# the debug build cache that the tests use.
export CARGO_TARGET_DIR="${PGALIGN_RELEASE_TARGET_DIR:-$HOME/.cache/pgalign-release}"
export PATH="$HOME/.cargo/bin:$PATH"
# Outside the clone by default, so a 20 MB binary never lands in a commit by accident.
dist="${PGALIGN_DIST:-$CARGO_TARGET_DIR/dist}"

say() { echo "release.sh: $*" >&2; }

command -v cargo >/dev/null || { say "cargo not found: install Rust (rustup.rs)"; exit 1; }
host="$(rustc -vV | sed -n 's/^host: //p')"
if [ "$host" != "$triple" ]; then
  # Only the host's standard library is sure to be present; another target needs rustup.
  if ! rustup target list --installed 2>/dev/null | grep -qx "$triple"; then
    say "host is $host; installing the rustup target $triple"
    rustup target add "$triple"
  fi
fi

if ! command -v cargo-zigbuild >/dev/null 2>&1; then
  say "installing cargo-zigbuild (crates.io)"
  cargo install --locked cargo-zigbuild
fi
if ! command -v zig >/dev/null 2>&1 && ! python3 -m ziglang version >/dev/null 2>&1; then
  say "installing zig (PyPI: ziglang)"
  python3 -m pip install --quiet --user ziglang 2>/dev/null || python3 -m pip install --quiet ziglang
fi

say "building pgalign for $triple with glibc $glibc (target dir $CARGO_TARGET_DIR)"
cargo zigbuild --release --locked --bin pgalign --target "$triple.$glibc"

bin="$CARGO_TARGET_DIR/$triple/release/pgalign"
[ -x "$bin" ] || { say "no binary at $bin"; exit 1; }

# The highest GLIBC_x.y symbol version the binary asks the dynamic loader for.
command -v objdump >/dev/null || { say "objdump not found (Debian: binutils)"; exit 1; }
need="$(objdump -T "$bin" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/^GLIBC_//' | sort -uV | tail -1)"
echo "highest glibc symbol version needed: GLIBC_$need (limit $glibc)"
if [ "$(printf '%s\n%s\n' "$need" "$glibc" | sort -V | tail -1)" != "$glibc" ]; then
  say "FAIL: $bin needs GLIBC_$need, newer than $glibc"
  exit 1
fi

mkdir -p "$dist"
out="$dist/pgalign-x86_64-linux-gnu-glibc$glibc"
cp "$bin" "$out"
strip "$out" 2>/dev/null || true
(cd "$dist" && sha256sum "$(basename "$out")" >"$(basename "$out").sha256")
"$out" --version
say "wrote $out ($(du -h "$out" | cut -f1)) and $out.sha256"
