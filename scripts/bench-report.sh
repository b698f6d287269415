#!/usr/bin/env bash
# Turns `go test -bench` output into tables a person can read: one table per
# package, a row per benchmark, a column per metric it reports. Lines that
# benchmarks log themselves (comparisons, notes) pass through as they are.
awk '
/^pkg: / { pkg = $2; next }
/^Benchmark/ {
  name = $1; sub(/-[0-9]+$/, "", name); sub(/^Benchmark/, "", name)
  row = name
  for (i = 3; i < NF; i += 2) row = row "\t" $i " " $(i+1)
  if (pkg != shown) { printf "\n== %s\n", pkg; shown = pkg }
  print row | "column -t -s \"\t\""
  close("column -t -s \"\t\"")
  next
}
/^(goos|goarch|cpu|PASS|ok|FAIL)/ { next }
{ print }
'
