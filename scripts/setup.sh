#!/usr/bin/env bash
# Set up a fresh machine: a virtual environment in .venv with rsicbench and its pinned
# dependencies, and the `test` extra (pytest and the pinned ruff + mypy of scripts/lint.sh;
# reinstalled whenever pyproject.toml changes). With --test, also the system tools the tests
# compare against (opj_compress from libopenjp2-tools, headless chromium). Safe to rerun.
set -euo pipefail
cd "$(dirname "$0")/.."
want_test=0
for a in "$@"; do [ "$a" = "--test" ] && want_test=1; done

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.rsicbench-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip setuptools wheel
  .venv/bin/python -m pip install -q -e ".[test]"
  touch "$stamp"
fi

if [ "$want_test" = 1 ]; then
  need=()
  command -v opj_compress >/dev/null 2>&1 || need+=(libopenjp2-tools)
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  # external-codec tests (configs/external.yaml): cwebp/dwebp, avifenc/avifdec, cjxl/djxl
  command -v cwebp >/dev/null 2>&1 || need+=(webp)
  command -v avifenc >/dev/null 2>&1 || need+=(libavif-bin)
  command -v cjxl >/dev/null 2>&1 || need+=(libjxl-tools)
  if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq >/dev/null
      apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    else
      echo "setup: missing ${need[*]}; install them (Debian: apt-get install ${need[*]})." \
           "Tests that need them are skipped." >&2
    fi
  fi
fi
echo "setup: ready ($(.venv/bin/python -c 'import torch,compressai;print("torch",torch.__version__,"compressai",compressai.__version__)'))"
