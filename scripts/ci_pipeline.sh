#!/usr/bin/env bash
# CI: the `ci` profile pipeline, then the drift gate against .ci/baseline.json.
#
# Why not `dvc exp run -S profile=ci`: in a fresh clone it runs every stage of dvc.yaml
# (training included) and leaves params.yaml changed in the workspace; and `dvc repro`
# with only $RSICBENCH_PROFILE set would reuse default-profile outputs (DVC cannot see an
# environment variable). So: the data stages through DVC (profile-independent inputs),
# then the ci-profile sweep and BD commands into results/ci/, which no DVC stage owns, and
# the same for two learned codecs (train + evaluate + rate audit), complexity, fidelity and
# the downstream classifier (docs/gate.md: what is gated, with which tolerance and why).
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
echo "ci: data stages: ${SECONDS}s"
for codec in $CODECS; do
  rsicbench sweep --codec "$codec" --dataset ucmerced --split test --out-root "$OUT/rd"
done
rsicbench bd --dataset ucmerced --anchor jpeg2000 --rd-root "$OUT/rd" --out "$OUT/bd/ucmerced.json"
echo "ci: classical sweeps + BD: ${SECONDS}s"

# Learned codecs, trained from scratch here at the ci profile (seeded): a CompressAI baseline
# and a paper model, rate r0; their own rd root so the classical BD table stays classical.
LEARNED=(bmshj2018-hyperprior ltchm-full)
for model in "${LEARNED[@]}"; do
  rsicbench train --model "$model" --rate r0 --out "$OUT/learned/train/$model/r0" --quiet
  rsicbench evaluate --model "$model" --rate r0 --checkpoint "$OUT/learned/train/$model/r0/best.pt" \
    --out-root "$OUT/learned/rd"
  # parameter and FLOP counts are gated, timings not: one repeat on a small input is enough
  rsicbench complexity --model "$model" --size 64 --repeats 1 --out "$OUT/papers/complexity/$model.json"
done
rsicbench fidelity --out "$OUT/papers/fidelity.json"
echo "ci: + learned codecs, complexity, fidelity: ${SECONDS}s"
# downstream: the ci classifier, scored on the classical sweeps' reconstructions
rsicbench classify train --out-dir "$OUT/classifier"
rsicbench classify evaluate --out-dir "$OUT/classifier" --rd-dir "$OUT/rd" --results-dir "$OUT/downstream"
echo "ci: + downstream classifier: ${SECONDS}s"

CURRENT=("$OUT"/rd/ucmerced/*.json "$OUT"/rd/ucmerced/*/*/per_image.csv "$OUT/bd/ucmerced.json"
         "$OUT"/learned/rd/ucmerced/*.json "$OUT"/learned/rd/ucmerced/*/*/{per_image.csv,rate_check.json}
         "$OUT"/papers/complexity/*.json "$OUT/papers/fidelity.json"
         "$OUT"/downstream/ucmerced/*.json "$OUT"/downstream/ucmerced/*/*.json)
if [[ "${1:-}" == "--update" ]]; then
  rsicbench gate --baseline .ci/baseline.json --current "${CURRENT[@]}" --update
else  # --strict: a value the baseline lacks (a new key) fails too; refresh the baseline on purpose
  rsicbench gate --baseline .ci/baseline.json --current "${CURRENT[@]}" --strict
fi
