#!/usr/bin/env bash
# Builds the kaos-broker image FROM scratch (no registry is needed) from the release binary and the
# shared libraries it links, and tags it (default kaos-broker:dev, the tag docker/compose.yaml uses).
# The build itself is `kaos image`, the same code `kaos run --platform docker` uses; the image is
# also tagged kaos-broker:<hash of the binary>. Usage: docker/build-image.sh [TAG]
set -euo pipefail
cd "$(dirname "$0")/.."
tag=${1:-kaos-broker:dev}
cargo build --release --workspace
target=${CARGO_TARGET_DIR:-target}
"$target/release/kaos" image --broker-bin "$target/release/kaos-broker" --tag "$tag" | tail -n 1
