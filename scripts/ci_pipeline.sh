#!/usr/bin/env bash
# CI: the whole pipeline on the `ci` profile (every stage of dvc.yaml, the report included),
# then the drift gate over every number it produced against .ci/baseline.json
# (docs/gate.md: what is gated, with which tolerance and why).
#
#   scripts/ci_pipeline.sh            # run + gate (CI, on a fresh clone)
#   scripts/ci_pipeline.sh --update   # run + refresh the baseline after an intended change
#   scripts/ci_pipeline.sh --gate-only [--update]   # gate what results/ and report/ hold now
#
# `dvc exp run -S profile=ci` sets params.yaml's profile for the run and keeps it in the
# workspace afterwards (CI's clone is thrown away; locally, `git checkout params.yaml` or
# `dvc exp run -S profile=default` switches back). It needs no git identity.
set -euo pipefail
cd "$(dirname "$0")/.."
# the project's environment (scripts/setup.sh) first, so python/dvc/rsicbench are its own
[ -x .venv/bin/python ] && export PATH="$PWD/.venv/bin:$PATH"

update=""
run=1
for arg in "$@"; do
  case "$arg" in
    --update) update=1 ;;
    --gate-only) run="" ;;
    *) echo "ci_pipeline.sh: unknown argument $arg" >&2; exit 2 ;;
  esac
done

if [[ -n "$run" ]]; then
  dvc exp run -S profile=ci
  echo "ci: pipeline (every stage, ci profile): ${SECONDS}s"
fi

# the files: configs/eval.yaml gate.files (every producer's outputs; one missing fails)
if [[ -n "$update" ]]; then
  rsicbench gate --profile ci --baseline .ci/baseline.json --update
else  # --strict: a value the baseline lacks (a new key) fails too; refresh the baseline on purpose
  rsicbench gate --profile ci --baseline .ci/baseline.json --strict
fi
