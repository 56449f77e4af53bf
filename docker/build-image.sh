#!/usr/bin/env bash
# Builds the kaos-broker image from the release binary and the libraries it links, FROM scratch
# (no registry is needed). Usage: docker/build-image.sh [TAG]   (default kaos-broker:dev)
set -euo pipefail
cd "$(dirname "$0")/.."
tag=${1:-kaos-broker:dev}
cargo build --release -p broker
bin=target/release/kaos-broker
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/rootfs/usr/local/bin" "$stage/rootfs/data" "$stage/rootfs/tmp"
cp "$bin" "$stage/rootfs/usr/local/bin/"
# Every shared library the binary needs, at the path the dynamic loader will look for it.
for lib in $(ldd "$bin" | awk '/=>/ {print $3} /^\t\/lib/ {print $1}'); do
  mkdir -p "$stage/rootfs$(dirname "$lib")"
  cp -L "$lib" "$stage/rootfs$lib"
done
cp docker/Dockerfile "$stage/"
docker build --quiet --label org.kaos.component=broker -t "$tag" "$stage" >/dev/null
echo "$tag"
