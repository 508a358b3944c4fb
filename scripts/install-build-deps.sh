#!/usr/bin/env bash
# Installs what `cargo build` and `cargo test` need beyond a Rust toolchain: cmake and nasm, which build the
# bundled libjpeg-turbo, and ImageMagick, whose `identify` the tests use to read the derivatives with decoders
# other than this crate's, and exiftool, which reads their metadata back. Does nothing when all are present.
# Debian and Ubuntu (apt-get); elsewhere, install them with the system's package manager (Homebrew: `brew install
# cmake nasm imagemagick exiftool`), or build without libjpeg-turbo: `cargo build --release --no-default-features
# --features pure-rust` (pure-Rust JPEG codecs, slower).
set -euo pipefail
need=()
command -v cmake >/dev/null || need+=(cmake)
command -v nasm >/dev/null || need+=(nasm)
command -v identify >/dev/null || need+=(imagemagick)
command -v exiftool >/dev/null || need+=(libimage-exiftool-perl)
if ((${#need[@]} == 0)); then
    exit 0
fi
if ! command -v apt-get >/dev/null; then
    echo "install ${need[*]} with your package manager (or build with --no-default-features --features pure-rust)" >&2
    exit 1
fi
sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo
$sudo apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
