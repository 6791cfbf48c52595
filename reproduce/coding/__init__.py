"""Entropy coding of learned latents: CompressAI-compatible entropy models (entropy.py), the
rANS decoder with bounds checks (rans_checked.py), the versioned bitstream container
(container.py) and the learned-codec stream layout (learned_stream.py).

May import: rsicbench core (errors, fsutil, ...). Nothing else from reproduce/.
"""
