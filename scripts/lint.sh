#!/usr/bin/env bash
# Lint and type check, configured in pyproject.toml ([tool.ruff], [tool.mypy]); exits non-zero
# on any finding. ruff checks the real folders (tests/, benchmarks/ and scripts/ included);
# mypy checks `-p rsicbench`, which reaches datasets/, metrics/, reproduce/, ... through the
# rsicbench/<name> links. Run by tests/test_lint.py, hence by pytest and .ci/run.
# PYTHON selects the interpreter whose ruff and mypy are used (default .venv/bin/python).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}

status=0
"$PY" -m ruff check --no-fix . || status=1
"$PY" -m mypy || status=1
exit "$status"
