#!/usr/bin/env bash
# Cross-compiles src/core + src/kernels and the kernel tests (test_kernels,
# test_kernels_fast) for aarch64 and runs them under qemu-user, so that the NEON
# kernels (src/kernels/cpu/*_neon.c) are checked on an x86 machine.
#
#   scripts/test-arm.sh            build in build-arm64/, run every test
#
# Installs nothing. Needs Debian's gcc-aarch64-linux-gnu, libc6-dev-arm64-cross and
# qemu-user (scripts/install-deps.sh). There is no aarch64 BLAS in that sysroot, so
# the kernels are built with -DDSOCR_NO_BLAS (their own blocked GEMM, cpu_gemm.c) and
# linked -static, which qemu-aarch64 runs without a sysroot.
# Runs: test_kernels and test_kernels_fast on qemu's "max" CPU (NEON + dotprod +
# bf16), then test_kernels on a Cortex-A53 (baseline NEON only: the same kernels,
# picked without the extensions). About a minute on 2 idle cores.
# Environment: BUILD (folder, default build-arm64), CC_AARCH64 (default
# aarch64-linux-gnu-gcc), QEMU_AARCH64 (default qemu-aarch64), JOBS (default nproc).
# Exits non-zero if anything fails to build or any check fails.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-arm64}
CC=${CC_AARCH64:-aarch64-linux-gnu-gcc}
QEMU=${QEMU_AARCH64:-qemu-aarch64}
JOBS=${JOBS:-$(nproc)}
case $BUILD in /*) ;; *) BUILD=$PWD/$BUILD ;; esac

for tool in "$CC" "$QEMU"; do
    command -v "$tool" >/dev/null ||
        { echo "test-arm.sh: $tool not found (apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user)"; exit 2; }
done

CFLAGS=(-std=c11 -O2 -Wall -Wextra -Werror -D_GNU_SOURCE -DDSOCR_NO_BLAS -Iinclude -Isrc -Itests/common
        "-DDSOCR_GOLDEN_DIR=\"$PWD/../shared/golden\"" "-DDSOCR_SOURCE_DIR=\"$PWD\"" "-DDSOCR_BINARY_DIR=\"$BUILD\"")
mkdir -p "$BUILD/obj"
rm -f "$BUILD"/obj/*.o

# every source of the two layers, as CMake globs them, plus the test helpers
SRCS=(src/core/*.c src/kernels/*.c src/kernels/*/*.c tests/common/test_util.c)
compile() {   # source -> $BUILD/obj/<path with / as _>.o
    "$CC" "${CFLAGS[@]}" -c "$1" -o "$BUILD/obj/$(echo "${1%.c}" | tr / _).o"
}
failed=0
for src in "${SRCS[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n || failed=1; done
    compile "$src" &
done
while [ "$(jobs -rp | wc -l)" -gt 0 ]; do wait -n || failed=1; done
wait || failed=1
[ "$failed" -eq 0 ] || { echo "test-arm.sh: cross-compilation failed"; exit 1; }

for t in test_kernels test_kernels_fast; do
    "$CC" "${CFLAGS[@]}" -static -o "$BUILD/$t" "tests/$t.c" "$BUILD"/obj/*.o -lm -lpthread
done
echo "test-arm.sh: built $BUILD/test_kernels $BUILD/test_kernels_fast ($("$CC" -dumpmachine))"

run() {   # cpu test
    echo "== qemu-aarch64 -cpu $1: $2"
    local t0=$SECONDS
    (cd "$BUILD" && timeout 600 "$QEMU" -cpu "$1" "./$2")
    echo "   ($((SECONDS - t0)) s)"
}
run max test_kernels
run max test_kernels_fast
run cortex-a53 test_kernels
echo "test-arm.sh: all aarch64 kernel tests passed"
