"""Entropy coding of learned latents: the rANS coder (rans.py), one stream per image shared by
every entropy model (shared_stream.py), the Gaussian-mixture entropy model (entropy.py), the
coding tables (coding_tables.py), the versioned bitstream container (container.py) and the
learned-codec stream layout (learned_stream.py).

May import: rsicbench core (errors, fsutil, ...). Nothing else from reproduce/.
"""
