"""Regions of interest: mask providers (providers.py: file masks, cloud detector, saliency),
the mask-building step that writes results/roi/masks (masks.py) and the cloud detector's
validation on the dataset stages' outputs (validation.py).

May import: rsicbench core, rsicbench.metrics. Nothing else from reproduce/.
"""
