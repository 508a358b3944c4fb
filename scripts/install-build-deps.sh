#!/usr/bin/env bash
# Installs what `cargo build` needs beyond a Rust toolchain: cmake and nasm, which build the bundled
# libjpeg-turbo. Does nothing when both are present. Debian and Ubuntu (apt-get); elsewhere, install them with
# the system's package manager (Homebrew: `brew install cmake nasm`), or build without libjpeg-turbo:
# `cargo build --release --no-default-features --features pure-rust` (pure-Rust JPEG codecs, slower).
set -euo pipefail
if command -v cmake >/dev/null && command -v nasm >/dev/null; then
    exit 0
fi
if ! command -v apt-get >/dev/null; then
    echo "install cmake and nasm with your package manager (or build with --no-default-features --features pure-rust)" >&2
    exit 1
fi
sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends cmake nasm >/dev/null
