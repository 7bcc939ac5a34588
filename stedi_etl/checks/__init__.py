"""Contract checks on frames: the rule engine and its result objects (rules.py), its row pre-filter
(prefilter.py)."""
