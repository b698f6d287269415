#!/usr/bin/env bash
# Runs every fuzz target in the module for a short while (FUZZTIME, default
# 1s): the seed corpora already run as plain tests; this adds a little
# mutation on every test run. Longer runs: FUZZTIME=10m scripts/fuzz-short.sh
#
# Each package's test binary is built once, with the fuzzer's
# instrumentation, and run once per target in the package's directory:
# `go test -fuzz` would link it again for every target, which took longer
# than the fuzzing. Inputs the fuzzer finds interesting go to the cache go
# test keeps them in, so each run starts where the last stopped.
#
# Go 1.26 can end a time-limited fuzz run with a bare "context deadline
# exceeded" and no failing input when the machine is busy (golang/go#75804);
# such a run is tried once more, for FUZZRETRYTIME (default FUZZTIME, or 10s: on a
# loaded machine gathering the baseline coverage of a target whose inputs are
# whole disk images takes longer than 1s), and a real crash always fails.
# Minimizing is bounded by executions, not time: with large seeds a
# time bound let minimization eat the whole run.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-1s}
retrytime=${FUZZRETRYTIME:-${FUZZTIME:-10s}}
# A fuzz run that ends by its time limit leaves its tests' t.TempDir
# directories behind; they go to a directory of ours, removed at the end.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export TMPDIR=$tmp
log=$tmp/fuzz.log
cache=$(go env GOCACHE)/fuzz
dirs=$(grep -rl --include='*_test.go' '^func Fuzz' . | grep -v '^./.cache/' | xargs -n1 dirname | sort -u)
# The binaries are built first, one per core at a time: most of a build is
# its link, which uses one.
mkdir "$tmp/bin"
binof() { echo "$tmp/bin/$(echo "$1" | tr ./ _-).test"; }
for dir in $dirs; do echo "$dir $(binof "$dir")"; done | xargs -P"$(nproc)" -n2 sh -c 'go test -c -fuzz=. -o "$2" "$1"' build
for dir in $dirs; do
  bin=$(binof "$dir")
  pkg=$(go list "$dir")
  for target in $(cat "$dir"/*_test.go | grep -o '^func Fuzz[A-Za-z0-9_]*' | cut -d' ' -f2 | sort); do
    echo "fuzz $dir $target ($fuzztime)"
    for try in 1 2; do
      time=$fuzztime
      [ "$try" = 2 ] && time=$retrytime
      if (cd "$dir" && "$bin" -test.run='^$' -test.fuzz="^${target}\$" -test.fuzztime="$time" -test.fuzzminimizetime=100x \
        -test.fuzzcachedir="$cache/$pkg" -test.timeout=10m) >"$log" 2>&1; then
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
