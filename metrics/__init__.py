"""rsicbench.metrics"""
