#!/usr/bin/env bash
# Turns `go test -bench` output into tables a person can read: a table per
# benchmark, a row per metric it reports. Lines that benchmarks log
# themselves pass through as they are.
awk '
/^pkg: / { pkg = $2; next }
/^Benchmark/ {
  name = $1; sub(/-[0-9]+$/, "", name); sub(/^Benchmark/, "", name)
  printf "\n%s  (%s)\n", name, pkg
  printf "  %-28s %14s\n", "metric", "value"
  for (i = 3; i < NF; i += 2) {
    if ($(i+1) == "ns/op") continue
    printf "  %-28s %14s\n", $(i+1), $i
  }
  next
}
/^(goos|goarch|cpu|PASS|ok|FAIL|\?)/ { next }
{ print }
'
