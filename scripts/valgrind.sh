#!/usr/bin/env bash
# Runs a representative subset of the test suite under valgrind memcheck: the kernel
# tests, io, the text golden cases, one vision golden case, one golden fixture through
# vision + decoder + generation (dsocr parity), the OCR command on a small image
# (--max-tokens 4), the memory guard and a few bad-input CLI cases. Any memcheck
# error or definite/indirect leak fails the run; so does a failing test.
# scripts/valgrind.supp: PCRE2 JIT code (no object file) false positives only.
#
#   scripts/valgrind.sh [BUILD_DIR]     (default build-valgrind; configured and built here)
#
# About 7 CPU-minutes (9.5 minutes wall on a busy 2-core machine, JOBS=2). Kernels
# dispatch on CPUID at run time; valgrind does not report AVX-512, so the AVX2 and
# scalar paths are the ones checked here.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$ROOT/build-valgrind}
GOLDEN=${DSOCR_GOLDEN_DIR:-$ROOT/../shared/golden}
JOBS=${JOBS:-2}

command -v valgrind >/dev/null || { echo "valgrind.sh: valgrind is not installed (apt-get install valgrind)" >&2; exit 2; }

# -O1 -g: fast enough under valgrind, exact line numbers; no sanitizers (they and valgrind exclude each other)
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDSOCR_SANITIZE=OFF \
      -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g" >/dev/null
cmake --build "$BUILD" -j"$JOBS" --target dsocr test_core test_kernels test_kernels_fast test_safetensors \
      test_checkpoint test_config test_text test_vision_golden test_image_decode \
      test_ocr_output test_memory_guard >/dev/null

LOGS="$BUILD/valgrind-logs"
rm -rf "$LOGS"
mkdir -p "$LOGS"
VG=(valgrind --tool=memcheck --leak-check=full --errors-for-leak-kinds=definite,indirect
    --show-leak-kinds=definite,indirect --error-exitcode=99 --track-origins=no --num-callers=30
    --suppressions="$ROOT/scripts/valgrind.supp")

start=$(date +%s)
# One case under valgrind, from the build folder, in the background ($JOBS at a time:
# valgrind runs a process's threads one at a time, so cases run side by side).
# expect: ok = exit 0; bad = a clean error (exit 1..127 but not valgrind's 99), for
# the bad-input cases, whose error paths must free everything too.
case_run() {
    local expect=$1 name=$2; shift 2
    local t0=$(date +%s) rc=0 verdict=FAIL
    (cd "$BUILD" && "${VG[@]}" --log-file="$LOGS/$name.log" "$@" >"$LOGS/$name.out" 2>&1) || rc=$?
    local t=$(( $(date +%s) - t0 ))
    if [ "$expect" = ok ] && [ $rc -eq 0 ]; then verdict=ok; fi
    if [ "$expect" = bad ] && [ $rc -ne 99 ] && [ $rc -ne 0 ] && [ $rc -lt 128 ]; then verdict=ok; fi
    {
        printf '  %-4s  %-34s %4ds (exit %d)\n' "$verdict" "$name" "$t" "$rc"
        if [ $verdict = FAIL ]; then
            echo "        $LOGS/$name.log"
            grep -E "ERROR SUMMARY|definitely lost|indirectly lost" "$LOGS/$name.log" | sed 's/^/        /' || true
            tail -3 "$LOGS/$name.out" | sed 's/^/        /'
        fi
    } > "$LOGS/$name.result"
    cat "$LOGS/$name.result"
}
spawn() {
    while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n || true; done
    case_run "$@" &
}
run() { spawn ok "$@"; }
run_bad() { spawn bad "$@"; }

echo "valgrind memcheck on $BUILD ($JOBS at a time)"
OUT=$(mktemp -d)
BAD=$(mktemp -d)
# the slow ones first
run vision_golden_small_text_tiny tests/test_vision_golden small_text_300x200__tiny
# vision + decoder + generation against one golden fixture, end to end
run parity_small_text_tiny ./dsocr parity -q -t 1 -m "$GOLDEN/tiny-model" \
                           --fixture "$GOLDEN/cases/small_text_300x200__tiny.safetensors"
run cli_ocr_tiny           ./dsocr -q -t 1 -m "$GOLDEN/tiny-model" --mode tiny --max-tokens 4 -o "$OUT/ok" \
                           "$GOLDEN/images/small_text_300x200.png"
run test_memory_guard      tests/test_memory_guard
run test_kernels_fast      tests/test_kernels_fast
run test_core              tests/test_core
run test_kernels           tests/test_kernels
run test_safetensors       tests/test_safetensors
run test_checkpoint        tests/test_checkpoint
run test_config            tests/test_config
run test_image_decode      tests/test_image_decode
run test_text              tests/test_text
run test_ocr_output        tests/test_ocr_output
# bad input: the error paths free everything too
mkdir -p "$BAD/model"
for f in "$GOLDEN"/tiny-model/*; do ln -s "$f" "$BAD/model/"; done
rm "$BAD/model/model.safetensors"
head -c 1000000 "$GOLDEN/tiny-model/model.safetensors" > "$BAD/model/model.safetensors"
run_bad cli_truncated_checkpoint ./dsocr -q -t 1 -m "$BAD/model" --mode tiny --max-tokens 4 -o "$OUT/bad1" \
                           "$GOLDEN/images/small_text_300x200.png"
head -c 300 "$GOLDEN/images/small_text_300x200.png" > "$BAD/cut.png"
run_bad cli_truncated_image ./dsocr -q -t 1 -m "$GOLDEN/tiny-model" --mode tiny --max-tokens 4 -o "$OUT/bad2" \
                           "$BAD/cut.png"
run_bad cli_memory_guard   ./dsocr -q -t 1 -m "$GOLDEN/tiny-model" --mode tiny --max-tokens 1000000 \
                           --max-memory 1G -o "$OUT/bad3" "$GOLDEN/images/small_text_300x200.png"
wait
rm -rf "$OUT" "$BAD"
total=$(ls "$LOGS"/*.result | wc -l)
failed=$(grep -l "^  FAIL" "$LOGS"/*.result | wc -l || true)
echo "valgrind.sh: $((total - failed)) of $total cases clean, $(( $(date +%s) - start )) s"
[ "$failed" -eq 0 ]
