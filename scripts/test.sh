#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs and starts what the tests need,
# then runs every test target.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test --locked "$@"
