#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs and starts what the tests need,
# then runs every test target.
#
# Azurite (the Table Storage emulator, pinned in package.json) is installed with npm and started
# in memory on a free port; its table endpoint is exported as SEEDWATCH_TEST_AZURITE for
# tests/it/ledger.rs and tests/it/apply.rs, and it is stopped when the script exits. Chromium (for the
# status page test) is installed with apt-get when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# tests/it/deploy.rs lints the scripts with shellcheck and fails without it.
if ! command -v shellcheck >/dev/null; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
        apt-get install -y -qq shellcheck >/dev/null || { apt-get update -qq && apt-get install -y -qq shellcheck >/dev/null; }
    else
        echo "scripts/test.sh: shellcheck is missing; install it (apt-get install shellcheck)" >&2
        exit 1
    fi
fi

if [ ! -x node_modules/.bin/azurite-table ]; then
    npm ci --no-audit --no-fund --loglevel=error
fi

# Headless Chromium renders the status page in tests/it/status.rs (Debian package `chromium`).
if ! command -v chromium >/dev/null 2>&1; then
    apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi

azurite_port="$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
azurite_dir="$(mktemp -d)"
azurite_bin="$PWD/node_modules/.bin/azurite-table"
# Started from a scratch directory so nothing it writes lands in the repository.
(cd "$azurite_dir" && exec "$azurite_bin" \
    --tableHost 127.0.0.1 --tablePort "$azurite_port" \
    --inMemoryPersistence --disableTelemetry --silent --skipApiVersionCheck) >"$azurite_dir/azurite.log" 2>&1 &
azurite_pid=$!
stop_azurite() {
    kill "$azurite_pid" 2>/dev/null || true
    wait "$azurite_pid" 2>/dev/null || true
    rm -rf "$azurite_dir"
}
trap stop_azurite EXIT

for _ in $(seq 1 100); do
    if node -e 'require("net").connect(+process.argv[1],"127.0.0.1").on("connect",()=>process.exit(0)).on("error",()=>process.exit(1))' "$azurite_port"; then
        break
    fi
    if ! kill -0 "$azurite_pid" 2>/dev/null; then
        echo "Azurite failed to start:" >&2
        cat "$azurite_dir/azurite.log" >&2
        exit 1
    fi
    sleep 0.2
done
export SEEDWATCH_TEST_AZURITE="http://127.0.0.1:${azurite_port}/devstoreaccount1"

cargo test --locked "$@"
# The AWS Lambda entry point (cargo feature `lambda`): its unit tests and the `lambda` module of
# the integration tests (tests/it/lambda.rs), which also builds the `seedwatch-lambda` binary.
# Skipped when arguments select other tests.
if [ $# -eq 0 ]; then
    cargo test --locked --features lambda --lib lambda::
    cargo test --locked --features lambda --test it lambda::
fi
