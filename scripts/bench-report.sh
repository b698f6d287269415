#!/usr/bin/env bash
# Turns `go test -bench` output into tables a person can read: a table per
# benchmark. Metrics reported as TOOL:METRIC (vhdprep:wall-s, azcopy:wall-s)
# make a table with a column for each tool and a row for each metric; the
# others follow as rows of their own. Lines that benchmarks log themselves
# pass through as they are. A failed benchmark or package (a missing tool
# under VHDPREP_REQUIRE_TOOLS=1, too) makes it exit 1, so that make bench
# fails with it.
awk '
/^pkg: / { pkg = $2; next }
/^Benchmark[^ \t]*[ \t]*$/ { next }  # a benchmark about to log, or a parent of sub-benchmarks
/^Benchmark/ {
  name = $1; sub(/-[0-9]+$/, "", name); sub(/^Benchmark/, "", name)
  printf "\n%s  (%s)\n", name, pkg
  nt = 0; nr = 0; np = 0
  split("", val); split("", seenT); split("", seenR)
  for (i = 3; i < NF; i += 2) {
    unit = $(i+1)
    if (unit == "ns/op") continue
    k = index(unit, ":")
    if (k == 0) { np++; plain[np] = unit; pval[np] = $i; continue }
    tool = substr(unit, 1, k - 1); m = substr(unit, k + 1)
    if (!(tool in seenT)) { seenT[tool] = 1; tools[++nt] = tool }
    if (!(m in seenR)) { seenR[m] = 1; rows[++nr] = m }
    val[tool SUBSEP m] = $i
  }
  if (nt > 0) {
    # vhdprep first, then the tools it is compared with; the rows in the
    # order a reader asks: how long, against what, at what cost.
    for (t = 1; t <= nt; t++) if (tools[t] == "vhdprep") { for (; t > 1; t--) tools[t] = tools[t-1]; tools[1] = "vhdprep"; break }
    n = 0
    split("wall-s wall-ratio cpu-s peak-RSS-MiB", first, " ")
    for (f = 1; f <= 4; f++) if (first[f] in seenR) order[++n] = first[f]
    for (r = 1; r <= nr; r++) if (rows[r] != "wall-s" && rows[r] != "wall-ratio" && rows[r] != "cpu-s" && rows[r] != "peak-RSS-MiB") order[++n] = rows[r]
    for (r = 1; r <= nr; r++) rows[r] = order[r]
    printf "  %-28s", "metric"
    for (t = 1; t <= nt; t++) printf " %21s", tools[t]
    printf "\n"
    for (r = 1; r <= nr; r++) {
      printf "  %-28s", rows[r]
      for (t = 1; t <= nt; t++) {
        key = tools[t] SUBSEP rows[r]
        printf " %21s", (key in val) ? val[key] : "-"
      }
      printf "\n"
    }
    if ("wall-ratio" in seenR) printf "  (wall-ratio: vhdprep'"'"'s wall time over the column'"'"'s; below 1, vhdprep is faster)\n"
  }
  for (i = 1; i <= np; i++) printf "  %-28s %14s\n", plain[i], pval[i]
  next
}
/^(--- FAIL|FAIL|panic:)/ { failed = 1 }
/^(goos|goarch|cpu|PASS|ok|\?)/ { next }
{ print }
END { if (failed) { print "\nbench: FAILED (above)"; exit 1 } }
'
