"""Learned compression models, composed from small blocks; see registry.py."""

from rsicbench.reproduce.models.registry import create_model, list_models, register_model

__all__ = ["create_model", "list_models", "register_model"]
