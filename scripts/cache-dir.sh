# Sourced by the scripts: the tests' cache outside the checkout (CI runs in a
# fresh clone, where a cache inside it would always be empty). Entries are
# keyed by their inputs, so every checkout on the machine shares them.
# internal/testimage.CacheDir names the same directory for Go tests.
cache_dir() {
  local dir="${XDG_CACHE_HOME:-$HOME/.cache}/vhdprep/$1"
  mkdir -p "$dir"
  printf '%s\n' "$dir"
}
