"""The model: what each table means (transforms.py) and how the tables are wired (steps.py). Polars only."""
