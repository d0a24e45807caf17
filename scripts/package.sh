#!/usr/bin/env bash
# Builds the seedwatch release binary for the Azure Functions Linux image and assembles the
# deployable zip:
#
#   seedwatch.zip
#     host.json
#     seedwatch                      the binary (mode 755), run by the host as `seedwatch serve`
#     reconcile/function.json        timerTrigger
#     resource-events/function.json  eventGridTrigger
#     resync/function.json           httpTrigger
#     retry/function.json            serviceBusTrigger
#     status/function.json           httpTrigger (GET)
#
# Binary baseline: a static x86_64-unknown-linux-musl build when that target is installed
# (rustup target add x86_64-unknown-linux-musl); otherwise a glibc build, which runs on the
# Functions Linux image (Debian 12, glibc 2.36) as long as the build machine's glibc is not newer
# than 2.36 -- the script checks the symbol versions the binary needs and refuses otherwise.
#
# Usage: scripts/package.sh [--out DIR] [--binary PATH [--skip-build]] [--target TRIPLE] [--source DIR]
#   --out DIR       where seedwatch.zip goes (default: dist)
#   --source DIR    where host.json and function/<name>/function.json are (default: the repository)
#   --binary PATH   package this prebuilt binary instead of building one
#   --skip-build    with --binary: do not run cargo at all (tests use it)
#   --target TRIPLE build for this target (default: musl if installed, else the host's glibc)
set -euo pipefail
repo_root="$(cd "$(dirname "$0")/.." && pwd)"

readonly FUNCTIONS=(reconcile resource-events resync retry status)
readonly MAX_GLIBC="2.36" # Debian 12, the base of the Functions 4.x Linux image

out_dir="$repo_root/dist"
source_dir="$repo_root"
binary=""
skip_build=false
target=""

usage() {
  sed -n '2,/^set -euo/p' "$repo_root/scripts/package.sh" | sed -e '$d' -e 's/^# \{0,1\}//'
}

while (($# > 0)); do
  case "$1" in
    --out)
      out_dir="${2:?--out needs a directory}"
      shift 2
      ;;
    --source)
      source_dir="${2:?--source needs a directory}"
      shift 2
      ;;
    --binary)
      binary="${2:?--binary needs a path}"
      shift 2
      ;;
    --skip-build)
      skip_build=true
      shift
      ;;
    --target)
      target="${2:?--target needs a target triple}"
      shift 2
      ;;
    -h | --help)
      usage
      exit 0
      ;;
    *)
      echo "package.sh: unknown argument: $1" >&2
      usage >&2
      exit 2
      ;;
  esac
done

fail() {
  echo "package.sh: $*" >&2
  exit 1
}

# Paths given on the command line are relative to the caller's directory.
absolute() {
  case "$1" in
    /*) printf '%s\n' "$1" ;;
    *) printf '%s\n' "$PWD/$1" ;;
  esac
}

out_dir="$(absolute "$out_dir")"
source_dir="$(absolute "$source_dir")"
[[ -z "$binary" ]] || binary="$(absolute "$binary")"
cd "$repo_root"

if [[ "$skip_build" == true && -z "$binary" ]]; then
  fail "--skip-build needs --binary PATH"
fi

if [[ -z "$binary" ]]; then
  if [[ -z "$target" ]]; then
    if rustup target list --installed 2>/dev/null | grep -qx 'x86_64-unknown-linux-musl'; then
      target="x86_64-unknown-linux-musl"
    else
      target="$(rustc -vV | sed -n 's/^host: //p')"
    fi
  fi
  echo "package.sh: building the release binary for $target" >&2
  if [[ "$target" == "$(rustc -vV | sed -n 's/^host: //p')" ]]; then
    # The host's own target: share target/release with `cargo build --release`.
    cargo build --release --locked --bin seedwatch
    binary="target/release/seedwatch"
  else
    cargo build --release --locked --bin seedwatch --target "$target"
    binary="target/$target/release/seedwatch"
  fi
elif [[ "$skip_build" == false ]]; then
  echo "package.sh: packaging the given binary $binary (no build)" >&2
fi

[[ -f "$binary" ]] || fail "binary not found: $binary"
[[ -f "$source_dir/host.json" ]] || fail "host.json not found in $source_dir"
for name in "${FUNCTIONS[@]}"; do
  [[ -f "$source_dir/function/$name/function.json" ]] || fail "function/$name/function.json not found in $source_dir"
done

# The Functions image is x86_64 Linux: refuse anything else, and a glibc binary that needs a
# newer glibc than the image has.
python3 - "$binary" "$MAX_GLIBC" <<'PY'
import re
import sys

path, max_glibc = sys.argv[1], sys.argv[2]
with open(path, "rb") as f:
    data = f.read()
if data[:4] != b"\x7fELF":
    sys.exit(f"package.sh: {path} is not a Linux (ELF) executable")
if data[4] != 2 or int.from_bytes(data[18:20], "little") != 62:
    sys.exit(f"package.sh: {path} is not an x86_64 executable")
needed = {tuple(int(p) for p in v.split(b".")) for v in re.findall(rb"GLIBC_([0-9]+\.[0-9]+(?:\.[0-9]+)?)", data)}
limit = tuple(int(p) for p in max_glibc.split("."))
too_new = sorted(v for v in needed if v > limit)
if too_new:
    newest = ".".join(str(p) for p in too_new[-1])
    sys.exit(f"package.sh: {path} needs glibc {newest}, the Functions image has {max_glibc}; build with the musl target")
PY

mkdir -p "$out_dir"
zip_path="$(cd "$out_dir" && pwd)/seedwatch.zip"
staging="$(mktemp -d)"
trap 'rm -rf "$staging"' EXIT

cp "$source_dir/host.json" "$staging/host.json"
for name in "${FUNCTIONS[@]}"; do
  mkdir -p "$staging/$name"
  cp "$source_dir/function/$name/function.json" "$staging/$name/function.json"
done
cp "$binary" "$staging/seedwatch"
chmod 0755 "$staging/seedwatch"

# python3's zipfile is always there (zip(1) may not be); it keeps the executable bit in the
# entry's external attributes, which the Functions host honours when it extracts or mounts.
rm -f "$zip_path"
python3 - "$staging" "$zip_path" <<'PY'
import os
import sys
import zipfile

staging, zip_path = sys.argv[1], sys.argv[2]
entries = []
for root, _dirs, files in os.walk(staging):
    for name in files:
        full = os.path.join(root, name)
        entries.append((os.path.relpath(full, staging), full))
with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
    for arcname, full in sorted(entries):
        info = zipfile.ZipInfo(arcname, date_time=(1980, 1, 1, 0, 0, 0))
        info.create_system = 3  # Unix, so the mode below is honoured
        mode = os.stat(full).st_mode & 0o777
        info.external_attr = (0o100000 | mode) << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        with open(full, "rb") as f:
            archive.writestr(info, f.read())
PY

echo "$zip_path"
