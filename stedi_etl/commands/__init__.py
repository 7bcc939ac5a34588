"""What the CLI's commands do, as library functions that return result objects (no printing here)."""
