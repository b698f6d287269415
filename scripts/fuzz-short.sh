#!/usr/bin/env bash
# Runs every fuzz target in the module for a short while (FUZZTIME, default
# 5s): the seed corpora already run as plain tests; this adds a little
# mutation on every test run. Longer runs: FUZZTIME=10m scripts/fuzz-short.sh
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-5s}
grep -rl --include='*_test.go' '^func Fuzz' . | grep -v '^./.cache/' | sort | while read -r file; do
  dir=$(dirname "$file")
  for target in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$file" | cut -d' ' -f2); do
    echo "fuzz $dir $target ($fuzztime)"
    go test -run='^$' -fuzz="^${target}\$" -fuzztime="$fuzztime" "$dir" >/tmp/vhdprep-fuzz.log 2>&1 || {
      cat /tmp/vhdprep-fuzz.log; exit 1; }
  done
done
