"""Codecs (classical and learned) behind one interface, and the evaluation engine."""

from rsicbench.reproduce.codecs.base import Codec, CodecError, create_codec, list_codecs, register_codec

__all__ = ["Codec", "CodecError", "create_codec", "list_codecs", "register_codec"]
