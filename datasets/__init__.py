"""rsicbench.datasets"""
