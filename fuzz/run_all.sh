#!/usr/bin/env bash
# Run every fuzz target for SECONDS (default 600), two at a time (one per core),
# each logging to LOGDIR/<target>.log; crash inputs are saved there too.
# The counts are the `stat::number_of_executed_units` line of each log.
set -u
seconds=${1:-600}
logdir=${2:-/tmp/tracebridge-fuzz-logs}
python=${PYTHON:-python3}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$logdir"
targets=("$here"/fuzz_*.py)
lane() {
    for ((i = $1; i < ${#targets[@]}; i += 2)); do
        name=$(basename "${targets[i]}" .py)
        "$python" "${targets[i]}" --seconds "$seconds" -artifact_prefix="$logdir/$name-" >"$logdir/$name.log" 2>&1
        echo "$name: exit $?, $(grep -h 'number_of_executed_units' "$logdir/$name.log")"
    done
}
lane 0 & lane 1 & wait
