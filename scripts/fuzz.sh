#!/usr/bin/env bash
# Fuzzes every decoder of outside data (the targets in fuzz/, one per function of
# src/fuzzing.rs) with cargo-fuzz, SECONDS_PER_TARGET each (default 60).
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# Needs the nightly toolchain (`rustup toolchain install nightly`); installs cargo-fuzz if
# missing. Seeds come from the test fixtures (tests/fixtures, examples/) and fuzz/seeds/; they
# are copied into fuzz/corpus/TARGET, which keeps what libFuzzer adds between runs. Each input
# is capped at FUZZ_MAX_LEN bytes (default 65536) and the process at FUZZ_RSS_MB (default
# 2048 MB), so unbounded allocation is a finding. A crash leaves its input in
# fuzz/artifacts/TARGET/ and makes the script fail; the last line per target is libFuzzer's
# "Done N runs in S second(s)".
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-60}"
shift || true
max_len="${FUZZ_MAX_LEN:-65536}"
rss_mb="${FUZZ_RSS_MB:-2048}"

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz.sh: the nightly toolchain is needed: rustup toolchain install nightly" >&2
    exit 2
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^seedwatch-fuzz$')
fi

# seed TARGET FILE...: copies fixture files into the target's corpus.
seed() {
    local target="$1"
    shift
    mkdir -p "fuzz/corpus/$target"
    for file in "$@"; do
        [ -f "$file" ] && cp "$file" "fuzz/corpus/$target/fixture-$(basename "$file")"
    done
    return 0
}

for target in "${targets[@]}"; do
    seed "$target" fuzz/seeds/"$target"/*
done
seed estate examples/estate.json
seed config examples/config.yml
seed cert_text tests/fixtures/certs/*.pem tests/fixtures/certs/*.b64
mkdir -p fuzz/corpus/cert_der
for file in tests/fixtures/certs/*.b64; do
    tr -d '\n\r ' <"$file" | base64 -d >"fuzz/corpus/cert_der/fixture-$(basename "$file" .b64).der"
done
# The Lambda fixtures hold Event Grid and CloudEvents events and resync bodies.
seed events tests/fixtures/lambda/*.json
seed resync tests/fixtures/lambda/url-resync*.json

failed=()
for target in "${targets[@]}"; do
    echo "== $target (${seconds}s)"
    log="fuzz/corpus/$target.log"
    if cargo +nightly fuzz run --fuzz-dir fuzz "$target" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -max_len="$max_len" -rss_limit_mb="$rss_mb" \
        -malloc_limit_mb="$rss_mb" -timeout=10 -print_final_stats=1 >"$log" 2>&1; then
        grep -E '^Done [0-9]+ runs' "$log" || tail -n 3 "$log"
    else
        tail -n 40 "$log"
        failed+=("$target")
    fi
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz.sh: findings in: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
