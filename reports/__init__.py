"""rsicbench.reports"""
