"""MGSS-Net: its blocks (blocks.py) and the models composed from them (model.py).
"""
