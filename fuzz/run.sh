#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 600), one after another, from
# seeded corpora. Needs cargo-fuzz (`cargo install cargo-fuzz`); runs on stable
# Rust without a sanitizer (`-s none`): panics and aborts are what it finds.
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-600}"
python3 seed.py
for t in validate authorization_header refresh_body; do
  cargo fuzz run -s none "$t" "corpus/$t" -- -max_total_time="$secs" -max_len=16384 2>&1 | tee "/tmp/fuzz-$t.log" | tail -n 3
done
