#!/usr/bin/env bash
# Fuzzes the parsers and the whole per-frame decision with cargo-fuzz
# (libFuzzer, AddressSanitizer), on the stable compiler through
# RUSTC_BOOTSTRAP=1, starting from the corpora kept in the repository, and
# reports per target how many inputs ran and how many crashed:
#
#   wire_views  node-dataplane/wire/fuzz      every view of trunkline-wire
#   pipeline    node-dataplane/pipeline/fuzz  wire views + Pipeline::process on
#                                             every port, tunnels included
#
# Usage:
#   scripts/fuzz.sh [SECONDS]   each target SECONDS (default: $FUZZ_SECONDS, else 60)   make fuzz
#   scripts/fuzz.sh --smoke     about 60 s in all (pipeline 40 s, wire 20 s)         make fuzz-smoke
#
# New inputs libFuzzer finds go to $CARGO_TARGET_DIR/fuzz/<target>/corpus
# (kept between runs, never into the repository); a crash leaves its input
# in $CARGO_TARGET_DIR/fuzz/<target>/artifacts/ and makes the run fail. A
# crash worth keeping becomes a seed (make_seeds.py) or a unit test.
# cargo-fuzz itself is installed at a pinned version by scripts/install-deps.sh.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
log() { printf '[fuzz] %s\n' "$*" >&2; }

# shellcheck source=versions.env
. "$repo/scripts/versions.env"
case ${1:-} in
  --smoke) budget=(pipeline=40 wire_views=20) ;;
  "") s=${FUZZ_SECONDS:-60}; budget=(pipeline="$s" wire_views="$s") ;;
  *[!0-9]*) sed -n '11,13p' "$0" >&2; exit 2 ;;
  *) budget=(pipeline="$1" wire_views="$1") ;;
esac

if ! cargo fuzz --version 2>/dev/null | grep -q " $CARGO_FUZZ_VERSION\$"; then
  log "cargo-fuzz $CARGO_FUZZ_VERSION is missing: run scripts/install-deps.sh (make deps)"
  exit 1
fi

target_dir=${CARGO_TARGET_DIR:-$repo/target}
failed=0
summary=()
for entry in "${budget[@]}"; do
  target=${entry%%=*} seconds=${entry#*=}
  case $target in
    pipeline) dir=node-dataplane/pipeline/fuzz ;;
    wire_views) dir=node-dataplane/wire/fuzz ;;
  esac
  work=$target_dir/fuzz/$target
  mkdir -p "$work/corpus" "$work/artifacts"
  before=$(find "$work/artifacts" -type f | wc -l)
  log "$target: building (cargo fuzz, AddressSanitizer), then $seconds s from $dir/corpus/$target"
  status=0
  (cd "$repo" && RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir "$dir" --features libfuzzer \
    --debug-assertions "$target" "$work/corpus" "$dir/corpus/$target" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$work/artifacts/") >"$work/log" 2>&1 || status=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -1)
  crashes=$(( $(find "$work/artifacts" -type f | wc -l) - before ))
  line="$target: ${runs:-?} runs, $crashes crash(es) (budget $seconds s)"
  if [ "$status" != 0 ] || [ "$crashes" != 0 ] || [ -z "$runs" ]; then
    failed=1
    line="$line: FAILED (exit $status; log $work/log)"
    tail -n 40 "$work/log" >&2
    ls -t "$work/artifacts" | head -n 5 | sed "s|^|  crash input: $work/artifacts/|" >&2
  fi
  summary+=("$line")
  log "$line"
done
printf '%s\n' "${summary[@]}"
# The plain closing line CI reads: targets that ran clean, targets that did not.
bad=$(printf '%s\n' "${summary[@]}" | grep -c FAILED || true)
printf 'fuzz: %d passed, %d failed\n' $(( ${#summary[@]} - bad )) "$bad"
exit $failed
