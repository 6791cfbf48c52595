"""AGDL (Alg. 1) networks: the mask predictor F and the dual-domain restorers G / G_car.
"""
