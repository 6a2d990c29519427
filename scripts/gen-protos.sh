#!/bin/sh
# Regenerates crates/keygate-extauthz/generated/ from its proto/ with
# protoc (Debian: protobuf-compiler). `--check` compares instead of writing
# and fails when the committed code is stale.
set -eu
crate="$(cd "$(dirname "$0")/../crates/keygate-extauthz" && pwd)"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
cargo run --quiet --manifest-path "$crate/codegen/Cargo.toml" \
    --target-dir "${CARGO_TARGET_DIR:-$crate/codegen/target}/extauthz-codegen" -- "$out"
rustfmt --edition 2024 "$out"/*.rs
if [ "${1:-}" = "--check" ]; then
    diff -ru "$crate/generated" "$out"
else
    mkdir -p "$crate/generated"
    rm -f "$crate/generated"/*.rs
    cp "$out"/*.rs "$crate/generated/"
fi
