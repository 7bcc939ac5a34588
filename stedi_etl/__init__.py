"""stedi-etl: the STEDI Step Trainer lake (landing -> trusted -> curated) as one tested package.

Importing the package is cheap; the modules that need Polars, pandera or s3fs import them themselves.
"""

from importlib import resources
from pathlib import Path

__version__ = "0.1.0"


def bundled(packaged: str, source_tree: str) -> Path:
    """A folder that ships inside the wheel as ``stedi_etl/<packaged>`` and lives at ``<repo>/<source_tree>``
    in a source checkout (an editable install)."""
    inside = resources.files("stedi_etl") / packaged
    if inside.is_dir():
        return Path(str(inside))
    return Path(__file__).resolve().parent.parent / source_tree


def sample_landing() -> str:
    """The sample landing data: packaged with an installed wheel, or fixtures/sample in the source tree."""
    return str(bundled("_sample", "fixtures/sample"))
