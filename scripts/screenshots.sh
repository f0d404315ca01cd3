#!/usr/bin/env bash
# Regenerates the screenshots in docs/screenshots from the current code: the browser test's shop-team
# session (a real service with SmolLM2 in-process, headless Chromium) saves them there.
set -euo pipefail
cd "$(dirname "$0")/.."
RECO_UI_SCREENSHOTS="$PWD/docs/screenshots" HF_HUB_OFFLINE=1 \
  .venv/bin/python -m pytest -q -p no:cacheprovider \
  "tests/ui/test_web_page.py::test_a_shop_team_session_end_to_end" "$@"
