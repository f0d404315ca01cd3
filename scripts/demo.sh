#!/usr/bin/env bash
# Fresh machine to running service: installs, loads the demo catalog, serves on the embedded defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh compiled-ranker
export HF_HUB_OFFLINE=1
exec .venv/bin/recommender demo "$@"
