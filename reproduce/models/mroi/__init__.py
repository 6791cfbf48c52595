"""MROI-CFHPM and its CFHPM base (model.py).
"""
