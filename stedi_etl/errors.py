"""The errors stedi-etl reports to its users, each with the exit code the CLI gives it."""

from __future__ import annotations


class StediError(Exception):
    """An error the CLI reports as one line, without a traceback."""

    exit_code = 1
    # Errors met while handling this one (recording the failed run, say): reported after it, one line each.
    also: tuple[str, ...] = ()


class UsageError(StediError):
    """The command was asked for something that cannot be done as asked (unknown contract, missing path)."""

    exit_code = 2


class ContractError(StediError):
    """A contract file is malformed or asks for something stedi-etl does not support."""

    exit_code = 2


class StorageError(StediError):
    """Reading or writing the landing data or the lake failed after retries."""

    exit_code = 1


class LakeError(StediError):
    """The lake does not hold what was asked for (no published version of a table)."""

    exit_code = 1


class LockError(StediError):
    """Another run holds the lake's lock, or this run lost it."""

    exit_code = 1


class LandingError(StediError):
    """A landing file is not JSON text at all (binary, compressed, HTML): the run stops before writing."""

    exit_code = 1
