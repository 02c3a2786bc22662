#!/usr/bin/env bash
# long-build.sh LABEL COMMAND...: runs a long `go build` or `go install`
# (given -v) and says, at least once a minute, how long it has run, how
# many packages it has compiled and the last one, so 20 quiet minutes are
# never mistaken for a hang. The command's output goes to a log, shown
# whole if it fails.
#   PROGRESS_EVERY=<seconds> changes the interval (default 60).
set -euo pipefail
label=$1; shift
every=${PROGRESS_EVERY:-60}
log=$(mktemp)
start=$SECONDS
report() {
  local n last
  n=$(grep -cv '^go: ' "$log" || true)
  last=$(tail -n 1 "$log" 2>/dev/null || true)
  printf '%s: %dm%02ds, %d packages compiled%s\n' "$label" $(((SECONDS - start) / 60)) $(((SECONDS - start) % 60)) "$n" "${last:+, last: $last}"
}
( while sleep "$every"; do report; done ) &
ticker=$!
trap 'kill "$ticker" 2>/dev/null || true; rm -f "$log"' EXIT
echo "$label: $*"
if ! "$@" >"$log" 2>&1; then
  kill "$ticker" 2>/dev/null || true
  echo "$label: FAILED after $((SECONDS - start))s:" >&2
  cat "$log" >&2
  exit 1
fi
kill "$ticker" 2>/dev/null || true
report
