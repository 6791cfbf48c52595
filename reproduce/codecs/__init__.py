"""Every codec behind one interface: `Codec`, the registry and `create_codec` (base.py), the
classical codecs (classical.py, decoders guarded by decoder_guard.py), the learned-model
wrapper (learned.py), command-line codecs from configs/external.yaml (external.py) and AGDL
(agdl.py).

May import: rsicbench core, rsicbench.metrics, reproduce.coding, reproduce.models, reproduce.roi.
"""
