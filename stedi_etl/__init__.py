"""stedi-etl: the STEDI Step Trainer lake (landing -> trusted -> curated) as one tested package.

Importing the package is cheap; the modules that need Polars, pandera or s3fs import them themselves.
"""

__version__ = "0.1.0"
