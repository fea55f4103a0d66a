#!/bin/sh
# Builds the libFuzzer targets (fuzz/, clang + ASan + UBSan) and runs each for a
# bounded time from a scratch copy of its committed corpus (fuzz/corpus/NAME).
#
#   scripts/fuzz.sh [SECONDS [TARGET...]]      default: 30 s each, every target
#
# Environment: BUILD (build folder, default build-fuzz), JOBS (build jobs, default 2),
# FUZZ_ARTIFACTS (where crash/leak/timeout inputs are kept, default $BUILD/artifacts),
# FUZZ_KEEP (a folder: the grown corpora are left in FUZZ_KEEP/NAME, and reused
# from there on the next run, instead of a throw-away copy).
# Prints executions per target; exits non-zero if any target found a crash, a
# leak, a timeout (-timeout=10), ran out of memory (-rss_limit_mb=2048) or did not build.
set -u
cd "$(dirname "$0")/.." || exit 2
SECONDS_EACH=${1:-30}
[ $# -gt 0 ] && shift
BUILD=${BUILD:-build-fuzz}
JOBS=${JOBS:-2}
ARTIFACTS=${FUZZ_ARTIFACTS:-$BUILD/artifacts}

ALL=$(sed -n 's/^ds_fuzz(NAME \([a-z0-9_]*\).*/\1/p' fuzz/targets.cmake)
TARGETS=${*:-$ALL}

command -v clang >/dev/null || { echo "fuzz.sh: clang is needed (apt-get install clang libclang-rt-14-dev)"; exit 2; }
mkdir -p "$BUILD"
CC=clang cmake -S fuzz -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$BUILD/configure.log" 2>&1 ||
    { cat "$BUILD/configure.log"; echo "fuzz.sh: configure failed"; exit 2; }
build_targets=""
for t in $TARGETS; do build_targets="$build_targets fuzz_$t"; done
# shellcheck disable=SC2086
cmake --build "$BUILD" -j"$JOBS" --target $build_targets || { echo "fuzz.sh: build failed"; exit 2; }

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
scratch=$(mktemp -d "${TMPDIR:-/tmp}/dsocr-fuzz.XXXXXX") || exit 2
trap 'rm -rf "$scratch"' EXIT INT TERM
mkdir -p "$ARTIFACTS"

failed=0
summary=""
for t in $TARGETS; do
    seeds=fuzz/corpus/$t
    [ -d "$seeds" ] || { echo "fuzz.sh: no corpus $seeds"; failed=1; continue; }
    if [ -n "${FUZZ_KEEP:-}" ]; then corpus=$FUZZ_KEEP/$t; else corpus=$scratch/$t; fi
    mkdir -p "$corpus" "$ARTIFACTS/$t"
    cp -p "$seeds"/* "$corpus"/ 2>/dev/null
    set -- -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$ARTIFACTS/$t/"
    [ -f "fuzz/dict/$t.dict" ] && set -- "$@" -dict="fuzz/dict/$t.dict"
    # shellcheck disable=SC2046  # one option per word in fuzz/options/NAME
    [ -f "fuzz/options/$t" ] && set -- "$@" $(cat "fuzz/options/$t")
    log=$scratch/$t.log
    echo "== fuzz_$t: ${SECONDS_EACH}s"
    "$BUILD/fuzz_$t" "$@" "$corpus" >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    rate=$(sed -n 's/.*exec\/s: \([0-9]*\).*/\1/p' "$log" | tail -n 1)
    if [ "$rc" -ne 0 ]; then
        failed=1
        status="FAILED (exit $rc)"
        grep -E "ERROR|SUMMARY|runtime error|fuzz check failed|Test unit written|==[0-9]+==" "$log" | head -n 40
        tail -n 20 "$log"
    else
        status=ok
    fi
    line=$(printf '%-18s %12s execs %8s exec/s  %s' "$t" "${execs:-?}" "${rate:-?}" "$status")
    echo "$line"
    summary="$summary$line
"
done
echo "== summary (${SECONDS_EACH}s each)"
printf '%s' "$summary"
[ "$failed" -eq 0 ] || { echo "fuzz.sh: FAILED; inputs kept in $ARTIFACTS"; exit 1; }
echo "fuzz.sh: all targets clean"
