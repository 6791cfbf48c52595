#!/usr/bin/env bash
# CI: the `ci` profile pipeline, then the drift gate against .ci/baseline.json.
#
# Why not `dvc exp run -S profile=ci`: in a fresh clone it runs every stage of dvc.yaml
# (training included) and leaves params.yaml changed in the workspace; and `dvc repro`
# with only $RSICBENCH_PROFILE set would reuse default-profile outputs (DVC cannot see an
# environment variable). So: the data stages through DVC (profile-independent inputs),
# then the ci-profile sweep and BD commands into results/ci/, which no DVC stage owns.
#
# Refresh the baseline after an intended change (then commit .ci/baseline.json):
#   scripts/ci_pipeline.sh --update
set -euo pipefail
cd "$(dirname "$0")/.."
# the project's environment (scripts/setup.sh) first, so python/dvc/rsicbench are its own
[ -x .venv/bin/python ] && export PATH="$PWD/.venv/bin:$PATH"
export RSICBENCH_PROFILE=ci
OUT=results/ci
CODECS=$(python -c "from rsicbench.config import settings; print(' '.join(settings('eval')['codecs']))")

dvc repro split@ucmerced           # fetch@ucmerced runs first as its upstream stage
rm -rf "$OUT"                      # CI always measures from scratch
for codec in $CODECS; do
  rsicbench sweep --codec "$codec" --dataset ucmerced --split test --out-root "$OUT/rd"
done
rsicbench bd --dataset ucmerced --anchor jpeg2000 --rd-root "$OUT/rd" --out "$OUT/bd/ucmerced.json"

CURRENT=("$OUT"/rd/ucmerced/*.json "$OUT/bd/ucmerced.json")
if [[ "${1:-}" == "--update" ]]; then
  rsicbench gate --baseline .ci/baseline.json --current "${CURRENT[@]}" --update
else
  rsicbench gate --baseline .ci/baseline.json --current "${CURRENT[@]}"
fi
