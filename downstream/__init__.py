"""rsicbench.downstream"""
