"""Per-paper studies built on the layers below: ablation tables (ablation.py) over the paper
models' image set (evalset.py), model fidelity against the papers' tables (fidelity.py),
complexity (complexity.py), paper-profile readiness (readiness.py), and the ROI section's
runs: AGDL train/RD (agdl_runs.py) and MROI-CFHPM train/evaluate (mroi_runs.py).

May import: everything in reproduce/ except reproduce.commands.
"""
