#!/usr/bin/env bash
# Fresh machine to test results: installs with the test extras, then runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh test
export HF_HUB_OFFLINE=1
exec .venv/bin/python -m pytest "$@"
