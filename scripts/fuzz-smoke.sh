#!/usr/bin/env bash
# A fuzzing smoke test for CI, under a minute: each cargo-fuzz target for ~10 s when cargo-fuzz
# is installed, otherwise the committed corpora replayed through `cargo test` (tests/it/fuzz_corpus.rs).
# Usage: scripts/fuzz-smoke.sh [seconds per target, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-10}"
targets=(token_request rewrite_answer unpack state_open)

if cargo fuzz --version >/dev/null 2>&1; then
    cd fuzz
    # cargo-fuzz passes nightly-only flags (-Zsanitizer, -Zbuild-std); RUSTC_BOOTSTRAP lets the
    # stable toolchain accept them.
    export RUSTC_BOOTSTRAP=1
    cargo fuzz build
    for target in "${targets[@]}"; do
        echo "== fuzz $target for ${seconds}s"
        # Fuzz a scratch copy so that the committed corpus stays the minimized one.
        scratch="$(mktemp -d)"
        cp -r "corpus/$target/." "$scratch/"
        cargo fuzz run "$target" "$scratch" -- -max_total_time="$seconds"
        rm -rf "$scratch"
    done
else
    echo "cargo-fuzz is not installed: replaying the committed corpora"
    cargo test --all-features --test it fuzz_corpus::
fi
