#!/usr/bin/env bash
# Installs what dsocr needs to build and test on Debian 12 (run as root or with sudo).
# Everything comes from Debian's packages; the tokenizer cross-check uses one npm package.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
pkgs=(
  build-essential cmake pkg-config git ca-certificates
  libopenblas-dev libcjson-dev libpcre2-dev
  libpng-dev libjpeg62-turbo-dev libwebp-dev libtiff-dev libgif-dev libexif-dev
  libmupdf-dev libopenjp2-7-dev libjbig2dec0-dev libmujs-dev libgumbo-dev
  libcurl4-openssl-dev libssl-dev
  # tests: fuzzing (clang + libFuzzer), valgrind, Arm kernels under qemu
  clang libclang-rt-14-dev valgrind gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user
)
# A machine may already have Node.js from another source (whose package conflicts with
# Debian's npm): install Debian's only where node or npm is missing.
command -v node >/dev/null || pkgs+=(nodejs)
command -v npm >/dev/null || pkgs+=(npm)
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
if [ -f tests/node/package-lock.json ]; then
  npm ci --prefix tests/node --no-audit --no-fund --loglevel=error
fi
