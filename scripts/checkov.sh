#!/usr/bin/env bash
# Runs checkov (pinned in infra/requirements-ci.txt) over infra/. Every check must pass or be
# skipped inline in the Bicep with its reason (#checkov:skip=CKV_...: reason).
#
# checkov lives in its own virtual environment (target/ci-venv): installed into the shared
# Python it downgrades packages other tools depend on (botocore, s3transfer).
# A template checkov cannot parse would silently yield no checks, so parse errors fail too.
set -euo pipefail
cd "$(dirname "$0")/.."

venv="target/ci-venv"
if [[ ! -x "$venv/bin/python" ]]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r infra/requirements-ci.txt

report="$(mktemp)"
trap 'rm -f "$report"' EXIT
# --skip-download: no calls to the Prisma Cloud API (no network needed).
"$venv/bin/checkov" --directory infra --framework bicep --skip-download --output json >"$report" 2>/dev/null || true
python3 - "$report" <<'PY'
import json
import sys

with open(sys.argv[1]) as f:
    text = f.read()
try:
    data = json.loads(text)
except ValueError:
    sys.exit("checkov.sh: checkov did not produce a JSON report:\n" + text[:2000])
reports = data if isinstance(data, list) else [data]
report = next((r for r in reports if r.get("check_type") == "bicep"), None)
if report is None:
    sys.exit("checkov.sh: checkov produced no bicep report")
summary, results = report["summary"], report["results"]
for check in results.get("skipped_checks", []):
    reason = (check.get("check_result") or {}).get("suppress_comment", "")
    print(f"skipped {check['check_id']} {check['resource']}: {reason}")
for check in results.get("failed_checks", []):
    lines = check.get("file_line_range", [])
    print(f"FAILED  {check['check_id']} {check['resource']} ({check['file_path']}:{lines}): {check['check_name']}")
print(f"checkov: {summary['passed']} passed, {summary['failed']} failed, {summary['skipped']} skipped")
if summary["parsing_errors"]:
    sys.exit(f"checkov.sh: checkov could not parse {summary['parsing_errors']} template(s); run checkov with LOG_LEVEL=DEBUG to see where")
if summary["passed"] == 0:
    sys.exit("checkov.sh: checkov ran no check at all")
if summary["failed"]:
    sys.exit("checkov.sh: fix the failed checks, or skip them inline with the reason (#checkov:skip=ID:reason)")
PY
