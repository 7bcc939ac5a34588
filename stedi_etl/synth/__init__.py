"""Synthetic STEDI landing data: the small sample with every defect placed (sample.py) and the vectorised
scale generator (scale.py)."""
