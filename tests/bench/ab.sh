#!/usr/bin/env bash
# Compares two labelhub binaries under one build of the hub benchmark, in
# alternating runs (ratios and before/after from the same session):
#
#   cargo bench --bench hub --no-run          # builds the bench and target/release/labelhub
#   cp target/release/labelhub /tmp/new       # and an older build as /tmp/old
#   BASE=/tmp/old NEW=/tmp/new tests/bench/ab.sh [accept|front|reads ...]
#
# The bench starts target/release/labelhub; this script swaps that file
# between BASE and NEW before each run and leaves NEW in place.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${BASE:?BASE=path of the old labelhub binary}"
: "${NEW:?NEW=path of the new labelhub binary}"
ROUNDS=${ROUNDS:-2}
bench=$(ls -t target/release/deps/hub-* 2>/dev/null | grep -v '\.d$' | head -n 1)
[ -n "$bench" ] || { echo "build the bench first: cargo bench --bench hub --no-run" >&2; exit 2; }
[ $# -gt 0 ] || set -- accept front
for what in "$@"; do
    for _ in $(seq 1 "$ROUNDS"); do
        for side in base new; do
            if [ $side = base ]; then bin=$BASE; else bin=$NEW; fi
            cp --remove-destination "$bin" target/release/labelhub
            echo "== $side $what (load $(cut -d' ' -f1 /proc/loadavg))"
            "$bench" "$what" 2>&1 | grep -v "^hub pid"
        done
    done
done
cp --remove-destination "$NEW" target/release/labelhub
