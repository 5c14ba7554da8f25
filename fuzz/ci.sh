#!/usr/bin/env bash
# Fuzz checks for CI (called by .ci/run): for every target, replay its saved corpus and
# committed seeds, then a short smoke run (25 s each, 75 s for the three targets).
# Needs cargo-fuzz; `-s none` works on stable (no sanitizer flags).
set -euo pipefail
cd "$(dirname "$0")"

command -v cargo-fuzz > /dev/null || cargo install cargo-fuzz --locked

SMOKE_SECONDS="${FUZZ_SMOKE_SECONDS:-25}"

for target in ops snapshot_bytes snapshot_payload; do
  # corpus/$target is git-ignored (a CI cache may restore it); seeds/$target is committed
  mkdir -p "corpus/$target" "seeds/$target"

  # regression check: every saved input once, no mutation
  cargo fuzz run -s none "$target" "corpus/$target" "seeds/$target" -- -runs=0

  # smoke run: new inputs go to corpus/$target, a crash to artifacts/$target/ and a
  # non-zero exit
  cargo fuzz run -s none "$target" "corpus/$target" "seeds/$target" -- \
    -max_total_time="$SMOKE_SECONDS"
done
