#!/usr/bin/env bash
# Fuzz checks for CI (called by .ci/run): replay the saved corpus, then a ~30 s smoke run.
# Needs cargo-fuzz; `-s none` works on stable (no sanitizer flags).
set -euo pipefail
cd "$(dirname "$0")"

command -v cargo-fuzz > /dev/null || cargo install cargo-fuzz --locked

# corpus/ops is git-ignored (a CI cache may restore it); seeds/ops is committed
mkdir -p corpus/ops seeds/ops

# regression check: every saved input once, no mutation
cargo fuzz run -s none ops corpus/ops seeds/ops -- -runs=0

# smoke run: new inputs go to corpus/ops, a crash to artifacts/ops/ and a non-zero exit
cargo fuzz run -s none ops corpus/ops seeds/ops -- -max_total_time=30
