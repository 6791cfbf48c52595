"""Measuring codecs: the sweep engine over images x rate points (engine.py, executors.py for
process pools and Dask), which images a sweep takes (samples.py), matched-rate search and
its unreached targets (search.py), the learned rate audit
(rate_audit.py), BD tables (bd_table.py), external-tool comparison (external_compare.py) and
the CI drift gate (gate.py).

May import: rsicbench core, rsicbench.metrics, reproduce.codecs, reproduce.roi, reproduce.training.
"""
