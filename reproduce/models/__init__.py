"""Learned compression models, composed from small blocks."""
