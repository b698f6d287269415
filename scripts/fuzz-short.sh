#!/usr/bin/env bash
# Runs every fuzz target in the module for a short while (FUZZTIME, default
# 5s): the seed corpora already run as plain tests; this adds a little
# mutation on every test run. Longer runs: FUZZTIME=10m scripts/fuzz-short.sh
#
# Go 1.26 can end a time-limited fuzz run with a bare "context deadline
# exceeded" and no failing input when the machine is busy (golang/go#75804);
# such a run is tried once more, and a real crash always fails.
# Minimizing is bounded by executions, not time: with large seeds a
# time bound let minimization eat the whole run.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-5s}
# A fuzz run that ends by its time limit leaves its tests' t.TempDir
# directories behind; they go to a directory of ours, removed at the end.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export TMPDIR=$tmp
log=$tmp/fuzz.log
grep -rl --include='*_test.go' '^func Fuzz' . | grep -v '^./.cache/' | sort | while read -r file; do
  dir=$(dirname "$file")
  for target in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$file" | cut -d' ' -f2); do
    echo "fuzz $dir $target ($fuzztime)"
    for try in 1 2; do
      if go test -run='^$' -fuzz="^${target}\$" -fuzztime="$fuzztime" -fuzzminimizetime=100x "$dir" >"$log" 2>&1; then
        break
      fi
      if [ "$try" = 1 ] && grep -q 'context deadline exceeded' "$log" && ! grep -q 'Failing input' "$log"; then
        echo "  (Go's fuzz deadline race; trying again)"
        continue
      fi
      cat "$log"
      exit 1
    done
  done
done
