"""The lake: where things live (storage.py turns a root URI into a filesystem), its tables and their
publish protocol (tables.py), and the one-writer lock (lock.py)."""
