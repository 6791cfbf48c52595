"""LTCHM: its blocks (blocks.py) and the model composed from them (model.py).
"""
