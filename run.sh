#!/usr/bin/env bash
# The two quick-start commands:
#   bash run.sh demo   set up .venv, then run the whole pipeline (Task A and B) on generated demo data
#   bash run.sh test   set up .venv, then run the test suite
# Set TORCH_SPEC to choose the PyTorch build (default torch==2.13.0).
set -euo pipefail
cd "$(dirname "$0")"

setup() {
  if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
  fi
  # shellcheck disable=SC1091
  . .venv/bin/activate
  python -m pip install -q --upgrade pip
  # Pin torch before anything asks for it: a bare 'torch' requirement pulls a multi-GB CUDA build.
  python -c "import torch" 2>/dev/null || python -m pip install -q "${TORCH_SPEC:-torch==2.13.0}"
  python -m pip install -q -e ".[test]"
}

case "${1:-}" in
  demo)
    setup
    time dvc repro
    moe summary
    echo "Plots: dvc plots show  (writes dvc_plots/index.html)"
    ;;
  test)
    setup
    # two workers of one thread each (tests/conftest.py) sharing one tiny-demo build: CI 17 min on a slow 2-core machine
    python -m pytest -q -n 2 --durations=12
    ;;
  *)
    echo "usage: bash run.sh demo|test" >&2
    exit 2
    ;;
esac
