#!/usr/bin/env bash
# Runs every labelhub fuzz target under libFuzzer (cargo-fuzz) for a bounded
# time and prints executions per target.
#
#   tests/fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). The machine has one stable
# toolchain; cargo-fuzz passes nightly-only flags (-Z...), so RUSTC_BOOTSTRAP=1
# lets stable rustc accept them. Sanitizer: none by default (the crate forbids
# unsafe code; bundled SQLite is not on these paths); set FUZZ_SANITIZER=address
# to use AddressSanitizer. Debug assertions are on (-a): integer overflow and
# debug_assert! count as findings.
#
# Seeds come from seeds/<target>/; the growing corpus is corpus/<target>/ and
# crashes land in artifacts/<target>/ (both ignored by git). Exit status is
# non-zero if any target found a crash, leak, timeout or OOM.
set -uo pipefail
cd "$(dirname "$0")"
export RUSTC_BOOTSTRAP=1
secs="${1:-60}"
shift || true
sanitizer="${FUZZ_SANITIZER:-none}"
if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list --fuzz-dir .)
fi
cargo fuzz build --sanitizer "$sanitizer" -a --fuzz-dir . || exit 2
mkdir -p logs
status=0
printf '%-16s %12s %10s %8s %s\n' target executions exec/s seconds result
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    [ -d "seeds/$t" ] && cp -n seeds/"$t"/* "corpus/$t/" 2>/dev/null
    start=$(date +%s)
    cargo fuzz run --sanitizer "$sanitizer" -a --fuzz-dir . "$t" "corpus/$t" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
        -print_final_stats=1 -artifact_prefix="artifacts/$t/" >"logs/$t.log" 2>&1
    rc=$?
    took=$(( $(date +%s) - start ))
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "logs/$t.log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "logs/$t.log" | tail -1)
    if [ "$rc" -eq 0 ]; then result=ok; else result="FOUND (exit $rc, see logs/$t.log, artifacts/$t/)"; status=1; fi
    printf '%-16s %12s %10s %8s %s\n' "$t" "${execs:-?}" "${rate:-?}" "$took" "$result"
done
exit "$status"
