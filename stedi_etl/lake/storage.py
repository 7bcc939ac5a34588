"""One root URI (a local folder or s3://bucket/prefix) and the fsspec filesystem that serves it.

Everything stedi-etl reads or writes goes through a Store, so local disk and S3 differ only in the URI.
S3 credentials, region and endpoint come from the standard AWS chain (environment, profiles, config files,
AWS_ENDPOINT_URL); ``endpoint_url`` overrides the endpoint for S3-compatible stores.

Transient S3 errors are retried with exponential backoff, as measured against a fault-injecting proxy:
- botocore retries every request that times out, cannot connect, or gets a 500, 502, 503 or 504 (SlowDown
  included), up to AWS_MAX_ATTEMPTS attempts (5 in botocore's default "legacy" AWS_RETRY_MODE, 3 in
  "standard"), all configurable by environment or profile;
- s3fs then repeats the whole call once more (S3_CALL_ATTEMPTS) after a SlowDown, or after a response
  body that broke off mid-read, which botocore cannot see. s3fs's own default of 5 multiplied botocore's
  attempts: a persistent SlowDown took 25 requests and about 40 s to report.
What still fails becomes a StorageError naming the object (s3://bucket/key), in one line, with anything
secret-looking removed from the message.

Every S3 operation has a deadline, retries included: STEDI_ETL_S3_TIMEOUT seconds (60 by default). An
endpoint that accepts connections and never answers made PUTs (conditional ones too) wait forever, and GETs
and listings 160-340 s, under botocore's own settings; now each gives up at the deadline, naming the
operation, the object and the endpoint. Each request also has botocore deadlines short enough for a retry
within the operation's (connect 5 s, read a third of the deadline), and deltalake's and Polars' own S3
client get the same bounds. Once an operation on a store has hit its deadline, the store's later operations
(recording the failure, releasing the lock) get a short one, so a run on a dead store ends soon after its
first timeout. Each retry is told to the "stedi_etl" logger (the CLI prints it on stderr).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import re
import stat
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stedi_etl.errors import StorageError, UsageError

if TYPE_CHECKING:
    import polars as pl

S3_PROTOCOLS = ("s3", "s3a")
S3_CALL_ATTEMPTS = 2  # s3fs's retries around botocore's (see above)
_CONCURRENT_WRITES = 16
TIMEOUT_ENV = "STEDI_ETL_S3_TIMEOUT"
DEFAULT_TIMEOUT_S = 60.0  # an S3 operation's deadline, retries included
_CONNECT_TIMEOUT_S = 5
_AFTER_TIMEOUT_S = 5.0  # the deadline of a store's operations once one has timed out
_BLOCKING = frozenset(
    {"exists", "isdir", "isfile", "find", "ls", "info", "cat_file", "cat_ranges", "pipe_file", "rm"}
    | {"call_s3"}
)
_log = logging.getLogger("stedi_etl.storage")
_NOT_REGULAR = "not a regular file (a pipe, socket or device)"


def operation_timeout() -> float:
    """The deadline of one S3 operation, retries included: STEDI_ETL_S3_TIMEOUT seconds, else 60."""
    text = os.environ.get(TIMEOUT_ENV, "").strip()
    if not text:
        return DEFAULT_TIMEOUT_S
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds < 86_400:
        raise UsageError(f"{TIMEOUT_ENV}={text!r} is not a number of seconds (for example 60)")
    return seconds


class _Deadlined:
    """An s3fs filesystem whose blocking calls each give up after the store's deadline (fsspec's own
    ``timeout``, which bounds the whole call: its requests and botocore's and s3fs's retries)."""

    def __init__(self, fs: Any, seconds: float) -> None:
        self._fs = fs
        self.seconds = seconds
        self.timed_out = False

    def deadline(self) -> float:
        return min(self.seconds, _AFTER_TIMEOUT_S) if self.timed_out else self.seconds

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._fs, name)
        if name not in _BLOCKING:
            return found
        return functools.partial(found, timeout=self.deadline())


_SECRET_ENV = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ACCESS_KEY_ID")
_SECRET_PATTERNS = (
    re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"),
    re.compile(r"(?i)(X-Amz-(?:Signature|Credential|Security-Token)=)[^&\s'\"]+"),
    re.compile(
        r"(?i)((?:aws_)?(?:secret_access_key|session_token|secret|password|token)['\"]?\s*[:=]\s*['\"]?)[^'\"\s,}]+"
    ),
)


# Credentials the AWS chain resolved for an S3 filesystem (from a profile or config file, say), so they are
# redacted even when no environment variable holds them.
_RESOLVED_SECRETS: set[str] = set()


def redact(message: str) -> str:
    """Remove credentials (from the environment, resolved by the AWS chain, or shaped like AWS keys and
    signatures) from a message."""
    values = {os.environ.get(name) for name in _SECRET_ENV} | _RESOLVED_SECRETS
    for value in sorted((v for v in values if v and len(v) >= 4), key=len, reverse=True):
        message = message.replace(value, "***")
    for pattern in _SECRET_PATTERNS:
        message = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + "***", message)
    return message


def protocol_of(uri: str) -> str:
    return uri.split("://", 1)[0].lower() if "://" in uri else "file"


def normal_uri(uri: str) -> str:
    """``uri`` as one location is always written: an absolute local path, or scheme://bucket/key."""
    if protocol_of(uri) == "file":
        local = uri[len("file://") :] if uri.startswith("file://") else uri
        # Absolute and normalised, but symlinks kept: the path as the user knows it, not where it points.
        return os.path.normpath(Path(local).expanduser().absolute())
    return uri.rstrip("/")


def _aws_environment() -> tuple[tuple[str, str], ...]:
    """The AWS_* variables: they choose credentials, region, endpoint, profile and retries."""
    return tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("AWS_")))


@functools.lru_cache(maxsize=8)
def _s3_filesystem(
    endpoint_url: str | None, environment: tuple[tuple[str, str], ...], pid: int, deadline: float
) -> Any:
    """One s3fs filesystem per endpoint, AWS environment and process.

    Building a client costs more than a whole small run's requests (service models, credential chain), so
    the Stores of a process share one; ``environment``, ``pid`` and ``deadline`` are in the key so a
    changed AWS_* variable or deadline, or a forked child, gets a client of its own. Listings are never
    cached: a run must see its own
    writes and a server reset between tests.
    """
    import s3fs
    from aiobotocore.session import AioSession

    session = AioSession()
    options: dict[str, Any] = {
        "skip_instance_cache": True,
        "use_listings_cache": False,
        "session": session,
        "config_kwargs": _client_defaults(session, endpoint_url, deadline),
    }
    if endpoint_url:
        options["endpoint_url"] = endpoint_url
    fs = s3fs.S3FileSystem(**options)
    fs.retries = S3_CALL_ATTEMPTS  # a class attribute: the constructor hands unknown options to botocore
    _remember_credentials(fs)
    client = getattr(fs, "s3", None)  # made by _remember_credentials; absent without usable credentials
    if client is not None:
        client.meta.events.register("needs-retry.s3", _note_retry)
    return fs


def _note_retry(
    attempts: int = 0,
    response: Any = None,
    caught_exception: BaseException | None = None,
    operation: Any = None,
    request_dict: Mapping[str, Any] | None = None,
    **_: Any,
) -> None:
    """Tell the "stedi_etl" logger of a failed S3 request botocore may retry (a handler of its needs-retry
    event that decides nothing: botocore's own handler does)."""
    if caught_exception is not None:
        reason = _reason(caught_exception)
    elif response is not None and getattr(response[0], "status_code", 200) >= 500:
        reason = f"HTTP {response[0].status_code}"
    else:
        return None
    name = getattr(operation, "name", "request")
    url = redact(str((request_dict or {}).get("url", "")).split("?", 1)[0])
    # One line per operation and few seconds: a stalled batch of a hundred files is one warning, not 200.
    now = time.monotonic()
    if now - _last_warned.get(name, -_WARN_EVERY_S) >= _WARN_EVERY_S:
        _last_warned[name] = now
        _log.warning("S3 %s %s failed (%s) on attempt %d; retrying", name, url, reason, attempts)
    return None


_WARN_EVERY_S = 5.0
_last_warned: dict[str, float] = {}


# botocore options stedi-etl chooses where the AWS configuration (environment or profile) leaves them unset.
_CHECKSUM_OPTIONS = {
    "request_checksum_calculation": "AWS_REQUEST_CHECKSUM_CALCULATION",
    "response_checksum_validation": "AWS_RESPONSE_CHECKSUM_VALIDATION",
}


def _custom_endpoint(endpoint_url: str | None) -> str | None:
    """The S3 endpoint given (``--s3-endpoint-url``, or the AWS configuration's), None for AWS's own."""
    return endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")


def _client_defaults(session: Any, endpoint_url: str | None, deadline: float) -> dict[str, Any]:
    """botocore's deadlines per request (connect 5 s, read a third of the operation's deadline, so a
    stalled request is retried within it); and checksums only where an operation requires them, for an
    endpoint other than AWS's own.

    Since 1.36 botocore adds a CRC32 to every upload and checks one on every download by default; several
    S3-compatible stores (older MinIO, Ceph, R2) reject those uploads. AWS's own endpoints keep botocore's
    default, and any setting of the AWS configuration (AWS_REQUEST_CHECKSUM_CALCULATION,
    AWS_RESPONSE_CHECKSUM_VALIDATION or the profile's) wins.
    """
    deadlines = {"connect_timeout": _CONNECT_TIMEOUT_S, "read_timeout": max(deadline / 3, 1.0)}
    custom = _custom_endpoint(endpoint_url)
    if not custom:
        return deadlines
    try:
        profile = session.get_scoped_config()
    except Exception:
        profile = {}  # a missing profile is reported by the first request, naming the object
    return deadlines | {
        option: "when_required"
        for option, variable in _CHECKSUM_OPTIONS.items()
        if variable not in os.environ and option not in profile
    }


def _resolved_identity(fs: Any) -> tuple[Any, str | None]:
    """The frozen credentials (or None) and the region the AWS chain resolves for an s3fs filesystem."""
    from fsspec.asyn import sync

    async def resolve() -> tuple[Any, str | None]:
        client = await fs.set_session()
        credentials = await fs.session.get_credentials()
        frozen = None if credentials is None else await credentials.get_frozen_credentials()
        return frozen, client.meta.region_name

    try:
        return sync(fs.loop, resolve)
    except Exception:
        return None, None  # the first request says what is wrong with the configuration


def _remember_credentials(fs: Any) -> None:
    """Add the credentials the AWS chain resolves for ``fs`` to what redact() removes (best effort)."""
    from fsspec.asyn import sync

    async def resolve() -> Any:
        await fs.set_session()
        credentials = await fs.session.get_credentials()
        return None if credentials is None else await credentials.get_frozen_credentials()

    try:
        frozen = sync(fs.loop, resolve)
    except Exception:
        return  # no usable credentials yet: the first request says why, and there is nothing to hide
    if frozen is not None:
        _RESOLVED_SECRETS.update(v for v in (frozen.secret_key, frozen.token) if v)


def _reason(err: BaseException) -> str:
    """Why an operation failed, in one line: S3's error code, HTTP status and message where there is one."""
    for candidate in (err, err.__cause__):
        response = getattr(candidate, "response", None)
        if isinstance(response, dict) and isinstance(response.get("Error"), dict):
            code = str(response["Error"].get("Code") or "")
            status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            # A HEAD answer has no body, so botocore reports its status as the code.
            head = f"HTTP {code}" if code.isdigit() else f"{code} (HTTP {status})" if status else code
            message = str(response["Error"].get("Message") or "")
            text = f"{head}: {message}" if message else head
            break
    else:
        text = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return redact(lines[0] if lines else type(err).__name__)


@dataclass(frozen=True)
class FileInfo:
    """What a listing says of a file: its size, and a stamp that changes whenever its content does (the
    ETag on S3, the modification time on disk)."""

    size: int
    stamp: str


def _stamp(info: Mapping[str, Any]) -> str:
    etag = info.get("ETag") or info.get("etag")
    if etag:
        return f"etag:{str(etag).strip(chr(34))}"
    stamp = f"mtime:{info.get('mtime') or info.get('LastModified') or info.get('created') or ''}"
    if info.get("ino") is not None and info.get("created") is not None:
        # A local file: its change time too. Any write sets it, and no tool can set it back, where the
        # modification time is restored by `rsync -t`, `cp -p` or `touch -r`.
        stamp += f" ctime:{info['created']}"
    return stamp


class Store:
    """A root location and its filesystem; paths handed out and taken back are the filesystem's own."""

    def __init__(self, uri: str, *, endpoint_url: str | None = None) -> None:
        import fsspec

        self.uri = uri.rstrip("/") or uri
        self.protocol = protocol_of(uri)
        self.endpoint_url = endpoint_url or None
        try:
            if self.protocol in S3_PROTOCOLS:
                seconds = operation_timeout()
                self.fs = _Deadlined(
                    _s3_filesystem(endpoint_url or None, _aws_environment(), os.getpid(), seconds), seconds
                )
                self.root = fsspec.core.strip_protocol(uri)
            else:
                options = {"auto_mkdir": True} if self.protocol == "file" else {}
                self.fs, self.root = fsspec.core.url_to_fs(uri, **options)
        except (ImportError, ValueError) as err:
            raise StorageError(f"cannot open {uri}: {redact(str(err))}") from None
        self.root = self.root.rstrip("/") or "/"

    def __repr__(self) -> str:
        return f"Store({self.uri!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # Another process (a Dask worker) opens the same root afresh, with its own client and credentials:
        # a filesystem's connections are never sent. A local root goes as its absolute path.
        return (_reopen, (self.location if self.protocol == "file" else self.uri, self.endpoint_url))

    def path(self, *parts: str) -> str:
        """The filesystem path of ``parts`` under the root."""
        return "/".join([self.root.rstrip("/"), *(p.strip("/") for p in parts if p)])

    def url(self, path: str) -> str:
        """A path as users write it (s3://bucket/key or a local path), for messages and records."""
        if self.protocol == "file":
            return path
        return f"{self.protocol}://{path}"

    @property
    def location(self) -> str:
        """The root as users write it, absolute: s3://bucket/prefix or /a/local/folder."""
        return self.url(self.root)

    def table_uri(self, path: str) -> str:
        """``path`` as deltalake names a table: s3://bucket/key, or the local folder."""
        return f"s3://{path}" if self.protocol in S3_PROTOCOLS else self.url(path)

    def scan_parquet(self, paths: Sequence[str], schema: Mapping[str, Any]) -> pl.LazyFrame:
        """Parquet files of this store as one lazy scan, in order: Polars reads them itself (from disk, or
        from S3 as deltalake does, with ``table_options``), only the row groups and columns a query needs.
        Without files, no rows of ``schema`` (the columns the files would hold)."""
        import polars as pl

        if not paths:
            return pl.LazyFrame(schema=dict(schema))
        local = [self.local_file(path) for path in paths]
        # Only the files' own columns: a Delta table's partition folders (day=...) name values its log holds.
        if all(found is not None for found in local):
            return pl.scan_parquet(local, hive_partitioning=False)  # type: ignore[arg-type]
        return pl.scan_parquet(
            [self.table_uri(path) for path in paths],
            storage_options=self.polars_options() or None,
            hive_partitioning=False,
        )

    def polars_options(self) -> dict[str, Any]:
        """``table_options`` as Polars takes them (the number of retries as a number, not text)."""
        options: dict[str, Any] = self.table_options()
        if "max_retries" in options:
            options["max_retries"] = int(options["max_retries"])
        return options

    def table_options(self) -> dict[str, str]:
        """deltalake's storage options for this store, from the AWS configuration s3fs uses.

        deltalake talks to S3 through its own client, which reads neither profiles nor botocore's config
        files; so it gets the credentials and region the AWS chain resolved for s3fs and the endpoint s3fs
        was given: both libraries act as one identity on one endpoint. Every request has a deadline.
        """
        if self.protocol not in S3_PROTOCOLS:
            return {}
        # The operation's deadline, as object_store bounds one: each request a third of it, at most two
        # retries, and no retry begun after the deadline.
        seconds = self.fs.deadline()
        options = {
            "timeout": f"{max(seconds / 3, 1):g}s",
            "connect_timeout": f"{_CONNECT_TIMEOUT_S}s",
            "max_retries": "2",
            "retry_timeout": f"{seconds:g}s",
        }
        endpoint = _custom_endpoint(self.endpoint_url)
        if endpoint:
            options["AWS_ENDPOINT_URL"] = endpoint
            if endpoint.startswith("http://"):
                options["AWS_ALLOW_HTTP"] = "true"
        credentials, region = _resolved_identity(self.fs)
        options["AWS_REGION"] = region or "us-east-1"
        if credentials is not None:
            options["AWS_ACCESS_KEY_ID"] = credentials.access_key
            options["AWS_SECRET_ACCESS_KEY"] = credentials.secret_key
            if credentials.token:
                options["AWS_SESSION_TOKEN"] = credentials.token
        return options

    def relative(self, path: str) -> str:
        return path[len(self.root) :].lstrip("/") if path.startswith(self.root) else path

    @property
    def endpoint(self) -> str:
        """The S3 endpoint this store's requests go to, as messages name it."""
        return _custom_endpoint(self.endpoint_url) or "AWS's S3 endpoint"

    @contextlib.contextmanager
    def _errors(self, verb: str, path: str) -> Iterator[None]:
        try:
            yield
        except StorageError:
            raise
        except TimeoutError as err:  # fsspec's FSTimeoutError among them: the operation's deadline passed
            if not isinstance(self.fs, _Deadlined):
                raise StorageError(f"cannot {verb} {self.url(path)}: {_reason(err)}") from None
            seconds = self.fs.deadline()
            self.fs.timed_out = True
            raise StorageError(
                f"cannot {verb} {self.url(path)}: no answer from {self.endpoint} within {seconds:g} s "
                f"({TIMEOUT_ENV})"
            ) from None
        except FileNotFoundError as err:
            reason = "no such bucket" if "bucket" in str(err).lower() else "not found"
            raise StorageError(f"cannot {verb} {self.url(path)}: {reason}") from None
        except Exception as err:
            raise StorageError(f"cannot {verb} {self.url(path)}: {_reason(err)}") from None

    def _where(self, paths: Sequence[str]) -> str:
        """What a message names for an operation on ``paths``: the one file, or the folder they share."""
        if len(paths) == 1:
            return paths[0]
        shared = os.path.commonpath(paths) if self.protocol == "file" else _common_prefix(paths)
        return shared or self.path()

    def exists(self, path: str) -> bool:
        with self._errors("check", path):
            return bool(self.fs.exists(path))

    def isdir(self, path: str) -> bool:
        with self._errors("check", path):
            return bool(self.fs.isdir(path))

    def files(self, path: str) -> dict[str, int]:
        """Every file below ``path`` (recursively) with its size; empty when ``path`` does not exist."""
        return {name: info.size for name, info in self.listing(path).items()}

    def listing(self, path: str, skipped: dict[str, str] | None = None) -> dict[str, FileInfo]:
        """Every file below ``path`` (recursively) with its size and change stamp, in one listing.

        A link is read as the file it names when that is a regular file inside this store's root (its size
        and stamps are the file's); any other link, and anything that is not a regular file (a pipe would
        wait for a writer forever), is not read: with ``skipped`` it goes there (path -> why), without it
        the listing fails naming it.
        """
        # No exists() first: on S3 that is two more requests (HEAD, then a listing) per call.
        with self._errors("list", path):
            try:
                found = self.fs.find(path, detail=True)
            except FileNotFoundError:
                return {}
            except NotADirectoryError:
                raise StorageError(f"cannot list {self.url(path)}: it is a file, not a folder") from None
        files: dict[str, FileInfo] = {}
        for name, info in sorted(found.items()):
            if info.get("type") == "directory":
                continue
            if info.get("type") == "file" and not info.get("islink"):
                files[name] = FileInfo(int(info.get("size") or 0), _stamp(info))
                continue
            target, why = self._followed(name) if info.get("islink") else (None, _NOT_REGULAR)
            if target is not None:
                files[name] = target
            elif skipped is not None:
                skipped[name] = why
            else:
                raise StorageError(f"cannot read {self.url(name)}: {why}")
        return files

    def _followed(self, link: str) -> tuple[FileInfo | None, str]:
        """The file a link on disk names, where it is a regular file inside the root; else why not."""
        try:
            target = os.path.realpath(link, strict=True)
            status = Path(target).stat()
        except FileNotFoundError:
            return None, f"a link to nothing ({Path(link).readlink()})"
        except OSError as err:  # ELOOP and the like
            return None, f"a link that cannot be followed ({err.strerror or err})"
        root = os.path.realpath(self.root)
        if not target.startswith(root.rstrip("/") + "/"):
            return None, f"a link to {target}, outside the landing root {root}"
        if not stat.S_ISREG(status.st_mode):
            return None, f"a link to {target}, which is not a regular file"
        info = {"mtime": status.st_mtime, "created": status.st_ctime, "ino": status.st_ino}
        return FileInfo(status.st_size, _stamp(info)), ""

    def is_file(self, path: str) -> bool:
        """Whether ``path`` is a file (on S3: an object at exactly that key)."""
        with self._errors("check", path):
            return bool(self.fs.isfile(path))

    def tree(self, path: str) -> dict[str, bool]:
        """Every file and folder below ``path`` -> whether it is a folder (empty folders too, on disk)."""
        with self._errors("list", path):
            try:
                found = self.fs.find(path, withdirs=True, detail=True)
            except FileNotFoundError:
                return {}
        return {name: info.get("type") == "directory" for name, info in sorted(found.items())}

    def _read_options(self) -> dict[str, Any]:
        # s3fs asks for an object's size (a HEAD) before each whole-object GET, only to split objects over
        # its block size into parallel ranged GETs. One GET per object is faster for landing and lake
        # files, and read_many already fetches several objects at once.
        return {"max_concurrency": 1} if self.protocol in S3_PROTOCOLS else {}

    def read_bytes(self, path: str) -> bytes:
        with self._errors("read", path):
            return bytes(self.fs.cat_file(path, **self._read_options()))

    def local_file(self, path: str) -> str | None:
        """``path`` as a file on this machine that another reader may open itself; None on object stores."""
        return path if self.protocol == "file" else None

    def read_if_exists(self, path: str) -> bytes | None:
        """The content of ``path``, or None where there is no such file (one request, where exists() and
        read_bytes() take two)."""
        with self._errors("read", path):
            try:
                return bytes(self.fs.cat_file(path, **self._read_options()))
            except FileNotFoundError:
                return None

    def read_many(self, paths: Iterable[str]) -> dict[str, bytes]:
        """Fetch several files; on S3 the requests run concurrently. A missing file is an error."""
        return self._fetch(paths, missing_ok=False)  # type: ignore[return-value]

    def read_many_if_exists(self, paths: Iterable[str]) -> dict[str, bytes | None]:
        """Fetch several files (concurrently on S3); a missing file is None."""
        return self._fetch(paths, missing_ok=True)

    def _fetch(self, paths: Iterable[str], *, missing_ok: bool) -> dict[str, bytes | None]:
        paths = list(paths)
        if not paths:
            return {}
        with self._errors("read", self._where(paths)):
            fetched = self.fs.cat_ranges(paths, None, None, on_error="return", **self._read_options())
        result: dict[str, bytes | None] = {}
        for path, data in zip(paths, fetched, strict=True):
            if missing_ok and isinstance(data, FileNotFoundError):
                # Dropped with its traceback: its frames reach back through this call's frame to every
                # caller's, so a kept exception holds their locals (a run's landing frames, at scale 100
                # 0.6 GiB) alive in a reference cycle until Python's cyclic collector happens to run.
                data.__traceback__ = None
                result[path] = None
            elif isinstance(data, BaseException):
                with self._errors("read", path):
                    raise data
            else:
                result[path] = bytes(data)
        return result

    def write_many(self, files: Mapping[str, bytes]) -> None:
        """Write several files at once: on S3 the uploads overlap, as the reads of read_many do."""
        self._each(self.write_bytes, files)

    def replace_many(self, files: Mapping[str, bytes]) -> None:
        """``replace`` several small objects; each swaps whole, independently of the others."""
        self._each(self.replace, files)

    def _each(self, operation: Callable[[str, bytes], None], files: Mapping[str, bytes]) -> None:
        # Threads, not the filesystem's batch calls: each operation keeps its own error, naming its object.
        if len(files) <= 1:
            for path, data in files.items():
                operation(path, data)
            return
        with ThreadPoolExecutor(max_workers=min(_CONCURRENT_WRITES, len(files))) as pool:
            for done in [pool.submit(operation, path, data) for path, data in files.items()]:
                done.result()

    def write_bytes(self, path: str, data: bytes) -> None:
        with self._errors("write", path):
            self.fs.pipe_file(path, data)

    def replace(self, path: str, data: bytes) -> None:
        """Replace one small object so a reader sees the old content or the new, never part of either.

        On S3 a single PUT already swaps the whole object at once. On disk the new content is written
        beside the file and renamed over it.
        """
        if self.protocol in S3_PROTOCOLS:
            self.write_bytes(path, data)
            return
        temporary = f"{path}.tmp-{uuid.uuid4().hex}"
        try:
            self.write_bytes(temporary, data)
            with self._errors("replace", path):
                self.fs.mv(temporary, path)
        except StorageError as err:
            self._remove_quietly(temporary)
            # Named as what it is for: the temporary file is ours, not the user's.
            raise StorageError(str(err).replace(self.url(temporary), self.url(path))) from None
        except BaseException:
            self._remove_quietly(temporary)  # a write that failed halfway (a full disk) leaves nothing
            raise

    def _remove_quietly(self, path: str) -> None:
        with contextlib.suppress(OSError):
            self.fs.rm_file(path)

    # Conditional writes, for the lake lock on S3 (If-None-Match / If-Match). Each returns the new ETag, or
    # None where the condition failed (HTTP 412).

    def create_exclusive(self, path: str, data: bytes) -> str | None:
        """Create ``path`` only if no object is there."""
        return self._conditional_put(path, data, IfNoneMatch="*")

    def replace_if_match(self, path: str, data: bytes, etag: str) -> str | None:
        """Replace ``path`` only if it still has ``etag``."""
        return self._conditional_put(path, data, IfMatch=etag)

    def _conditional_put(self, path: str, data: bytes, **condition: str) -> str | None:
        bucket, key, _ = self.fs.split_path(path)
        with self._errors("write", path):
            try:
                response = self.fs.call_s3("put_object", Bucket=bucket, Key=key, Body=data, **condition)
            except OSError as err:
                if _precondition_failed(err):
                    return None
                raise
        return str(response.get("ETag", "")).strip('"') or None

    def read_with_etag(self, path: str) -> tuple[bytes, str] | None:
        """An object's content and ETag from one GET, or None where there is no object."""
        from fsspec.asyn import sync

        bucket, key, _ = self.fs.split_path(path)

        async def get() -> tuple[bytes, str]:
            response = await self.fs._call_s3("get_object", Bucket=bucket, Key=key)
            async with response["Body"] as body:
                return await body.read(), str(response.get("ETag", "")).strip('"')

        with self._errors("read", path):
            try:
                return sync(self.fs.loop, get, timeout=self.fs.deadline())
            except FileNotFoundError:
                return None

    def remove_if_match(self, path: str, etag: str) -> bool:
        """Delete ``path`` only if it still has ``etag``; False where it has not (or is gone)."""
        bucket, key, _ = self.fs.split_path(path)
        with self._errors("delete", path):
            try:
                self.fs.call_s3("delete_object", Bucket=bucket, Key=key, IfMatch=etag)
            except FileNotFoundError:
                return False
            except OSError as err:
                if _precondition_failed(err):
                    return False
                raise
        return True

    def remove_many(self, files: Sequence[str], folders: Sequence[str] = ()) -> None:
        """Delete exact files (batched, 1000 to a request on S3), then the emptied ``folders``.

        Folders exist only on disk; on S3 a "folder" is a prefix and goes with its last object. Naming every
        file spares S3 the listing a recursive delete makes per folder.
        """
        if files:
            where = self._where(files)
            with self._errors("delete", where), contextlib.suppress(FileNotFoundError):
                self.fs.rm(list(files))
        if self.protocol in S3_PROTOCOLS:
            return
        for folder in sorted(folders, key=len, reverse=True):  # the deepest first
            with self._errors("delete", folder), contextlib.suppress(FileNotFoundError, OSError):
                self.fs.rmdir(folder)

    def same_content(self, path: str, data: bytes) -> bool:
        """Whether ``path`` is a file holding exactly ``data``: the same size, then the same checksum.

        On S3 the ETag is compared with the MD5 of ``data`` (S3 sets it so for a plain upload, and to the
        MD5 of the parts' MD5s for a multipart one); elsewhere the file's bytes are hashed.
        """
        with self._errors("check", path):
            try:
                info = self.fs.info(path)
            except FileNotFoundError:
                return False
            if info.get("type") != "file" or int(info.get("size") or 0) != len(data):
                return False
            if self.protocol in S3_PROTOCOLS:
                etag = str(info.get("ETag") or "").strip('"')
                return bool(etag) and etag in _possible_etags(data, etag)
            return hashlib.sha256(self.fs.cat_file(path)).digest() == hashlib.sha256(data).digest()


def _precondition_failed(err: BaseException) -> bool:
    """Whether an S3 error is HTTP 412, a conditional write's condition failing (s3fs makes it EINVAL)."""
    for candidate in (err, err.__cause__, err.__context__):
        response = getattr(candidate, "response", None)
        if isinstance(response, dict):
            status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status == 412 or response.get("Error", {}).get("Code") in ("PreconditionFailed", "412"):
                return True
    return "precondition" in str(err).lower()


# Part sizes of the common multipart uploaders: the AWS CLI and boto3 (8 MiB), s3fs (50 MiB).
_PART_SIZES = (8 * 2**20, 16 * 2**20, 50 * 2**20, 64 * 2**20, 100 * 2**20)


def _possible_etags(data: bytes, etag: str) -> set[str]:
    """The ETags S3 could give ``data``: its MD5, or for an ETag of N parts, each known part size's."""
    if "-" not in etag:
        return {hashlib.md5(data, usedforsecurity=False).hexdigest()}
    parts = etag.rsplit("-", 1)[1]
    found = set()
    for size in _PART_SIZES:
        if not parts.isdigit() or -(-len(data) // size) != int(parts):
            continue
        digests = b"".join(
            hashlib.md5(data[i : i + size], usedforsecurity=False).digest() for i in range(0, len(data), size)
        )
        found.add(f"{hashlib.md5(digests, usedforsecurity=False).hexdigest()}-{parts}")
    return found


def _common_prefix(paths: Sequence[str]) -> str:
    """The folder (whole "/"-separated parts) every one of ``paths`` lies under."""
    parts = [path.split("/") for path in paths]
    shared = []
    for names in zip(*parts, strict=False):
        if len(set(names)) != 1:
            break
        shared.append(names[0])
    return "/".join(shared[: min(len(p) for p in parts) - 1])


def is_hidden(relative: str) -> bool:
    """Spark and Athena skip names starting with "." or "_"; so does stedi-etl."""
    return any(part.startswith((".", "_")) for part in relative.strip("/").split("/") if part)


def open_store(uri: str, *, endpoint_url: str | None = None) -> Store:
    """The one place a root URI becomes a Store: commands open each root once and pass it down."""
    return Store(uri, endpoint_url=endpoint_url)


def _reopen(uri: str, endpoint_url: str | None) -> Store:
    """A Store unpickled in another process (Store.__reduce__)."""
    return open_store(uri, endpoint_url=endpoint_url)
