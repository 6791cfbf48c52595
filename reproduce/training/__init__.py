"""Training learned codecs: the loop and its checkpoints (train.py), one run's resolved settings
(run_config.py), lambda conversions (lambdas.py) and where a model's weights come from
(weight_sources.py: train | zoo | checkpoint).

May import: rsicbench core, reproduce.models, reproduce.roi, reproduce.codecs.
"""
