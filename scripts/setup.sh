#!/usr/bin/env bash
# Fresh-machine set-up: a venv in .venv with erfsuite, torch (CPU), jax (CPU) and test tools.
# Idempotent; torch==2.13.0 is installed first so nothing pulls a CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
.venv/bin/python -m pip install -q torch==2.13.0
.venv/bin/python -m pip install -q -e '.[torch,jax,test]'
