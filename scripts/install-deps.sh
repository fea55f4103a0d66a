#!/usr/bin/env bash
# Installs what dsocr needs to build and test on Debian 12 (run as root or with sudo).
# Everything comes from Debian's packages; the tokenizer cross-check uses two npm packages.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
  build-essential cmake pkg-config git ca-certificates \
  libopenblas-dev libcjson-dev libpcre2-dev \
  libpng-dev libjpeg62-turbo-dev libwebp-dev libtiff-dev libgif-dev libexif-dev \
  libmupdf-dev libopenjp2-7-dev libjbig2dec0-dev libmujs-dev libgumbo-dev \
  libcurl4-openssl-dev libssl-dev \
  nodejs npm >/dev/null
if [ -f tests/node/package-lock.json ]; then
  npm ci --prefix tests/node --no-audit --no-fund --loglevel=error
fi
