#!/usr/bin/env bash
# run.sh - `make fuzz`: builds the libFuzzer targets and fuzzes each for FUZZ_SECONDS
# (default 600), one after another. A crash, leak or timeout is saved under
# tests/fuzz/regressions/<target>/ so that `make test` replays it from then on; new
# coverage is merged (minimised) back into the seed corpus tests/fuzz/corpus/<target>/.
# Prints, per target, executions per second and final coverage.
set -u
cd "$(dirname "$0")/../.."
seconds=${FUZZ_SECONDS:-600}
targets=${FUZZ_TARGETS:-request route percent json pipeline schema template forwarded}
B=build/fuzz
mkdir -p "$B"
status=0
for t in $targets; do
    clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
        "tests/fuzz/fuzz_$t.c" -o "$B/fuzz_$t" || exit 1
    work="$B/corpus-$t"
    mkdir -p "$work" "tests/fuzz/regressions/$t"
    "$B/fuzz_$t" -dict="tests/fuzz/$t.dict" -max_total_time="$seconds" -print_final_stats=1 \
        -artifact_prefix="tests/fuzz/regressions/$t/" -timeout=10 -rss_limit_mb=2048 \
        "$work" "tests/fuzz/corpus/$t" >"$B/$t.log" 2>&1 || status=1
    cov=$(grep -E '^#[0-9]+' "$B/$t.log" | tail -1 | sed -n 's/.*cov: \([0-9]*\).*ft: \([0-9]*\).*/\1 edges, \2 features/p')
    execs=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$B/$t.log")
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$B/$t.log")
    echo "fuzz_$t: ${runs:-?} runs in ${seconds}s, ${execs:-?} exec/s, coverage ${cov:-?}"
    grep -E 'ERROR|SUMMARY' "$B/$t.log" | head -5
    "$B/fuzz_$t" -merge=1 "tests/fuzz/corpus/$t" "$work" >"$B/$t.merge.log" 2>&1
done
exit $status
