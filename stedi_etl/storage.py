"""One root URI (a local folder or s3://bucket/prefix) and the fsspec filesystem that serves it.

Everything stedi-etl reads or writes goes through a Store, so local disk and S3 differ only in the URI.
S3 credentials, region and endpoint come from the standard AWS chain (environment, profiles, config files,
AWS_ENDPOINT_URL); ``endpoint_url`` overrides the endpoint for S3-compatible stores. Transient S3 errors
are retried by botocore (AWS_MAX_ATTEMPTS / AWS_RETRY_MODE) and by s3fs; what still fails becomes a
StorageError naming the object, with anything secret-looking removed from the message.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from stedi_etl.errors import StorageError

S3_PROTOCOLS = ("s3", "s3a")

_SECRET_ENV = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ACCESS_KEY_ID")
_SECRET_PATTERNS = (
    re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"),
    re.compile(r"(?i)(X-Amz-(?:Signature|Credential|Security-Token)=)[^&\s'\"]+"),
    re.compile(
        r"(?i)((?:aws_)?(?:secret_access_key|session_token|secret|password|token)['\"]?\s*[:=]\s*['\"]?)[^'\"\s,}]+"
    ),
)


def redact(message: str) -> str:
    """Remove credentials (from the environment or shaped like AWS keys and signatures) from a message."""
    for name in _SECRET_ENV:
        value = os.environ.get(name)
        if value and len(value) >= 4:
            message = message.replace(value, "***")
    for pattern in _SECRET_PATTERNS:
        message = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + "***", message)
    return message


def protocol_of(uri: str) -> str:
    return uri.split("://", 1)[0].lower() if "://" in uri else "file"


class Store:
    """A root location and its filesystem; paths handed out and taken back are the filesystem's own."""

    def __init__(self, uri: str, *, endpoint_url: str | None = None) -> None:
        import fsspec

        self.uri = uri.rstrip("/") or uri
        self.protocol = protocol_of(uri)
        options: dict[str, Any]
        if self.protocol in S3_PROTOCOLS:
            # A fresh client per Store (moto servers are reset between tests; runs must not see stale
            # listings of their own writes), endpoint override only when asked.
            options = {"skip_instance_cache": True, "use_listings_cache": False}
            if endpoint_url:
                options["endpoint_url"] = endpoint_url
        elif self.protocol == "file":
            options = {"auto_mkdir": True}
        else:
            options = {}
        try:
            self.fs, self.root = fsspec.core.url_to_fs(uri, **options)
        except (ImportError, ValueError) as err:
            raise StorageError(f"cannot open {uri}: {redact(str(err))}") from None
        self.root = self.root.rstrip("/") or "/"

    def __repr__(self) -> str:
        return f"Store({self.uri!r})"

    def path(self, *parts: str) -> str:
        """The filesystem path of ``parts`` under the root."""
        return "/".join([self.root.rstrip("/"), *(p.strip("/") for p in parts if p)])

    def url(self, path: str) -> str:
        """A path as users write it (s3://bucket/key or a local path), for messages and records."""
        if self.protocol == "file":
            return path
        return f"{self.protocol}://{path}"

    def relative(self, path: str) -> str:
        return path[len(self.root) :].lstrip("/") if path.startswith(self.root) else path

    @contextmanager
    def _errors(self, verb: str, path: str) -> Iterator[None]:
        try:
            yield
        except StorageError:
            raise
        except FileNotFoundError:
            raise StorageError(f"cannot {verb} {self.url(path)}: not found") from None
        except Exception as err:
            reason = redact(str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__)
            raise StorageError(f"cannot {verb} {self.url(path)}: {reason}") from None

    def exists(self, path: str) -> bool:
        with self._errors("check", path):
            return bool(self.fs.exists(path))

    def isdir(self, path: str) -> bool:
        with self._errors("check", path):
            return bool(self.fs.isdir(path))

    def files(self, path: str) -> dict[str, int]:
        """Every file below ``path`` (recursively) with its size; empty when ``path`` does not exist."""
        with self._errors("list", path):
            if not self.fs.exists(path):
                return {}
            found = self.fs.find(path, detail=True)
        return {name: int(info.get("size") or 0) for name, info in sorted(found.items())}

    def listdir(self, path: str) -> list[str]:
        """The names directly under ``path``; empty when it does not exist."""
        with self._errors("list", path):
            if not self.fs.exists(path):
                return []
            entries = self.fs.ls(path, detail=False)
        return sorted(e.rstrip("/").rsplit("/", 1)[-1] for e in entries)

    def read_bytes(self, path: str) -> bytes:
        with self._errors("read", path):
            return bytes(self.fs.cat_file(path))

    def read_many(self, paths: Iterable[str]) -> dict[str, bytes]:
        """Fetch several files; on S3 the requests run concurrently."""
        paths = list(paths)
        if not paths:
            return {}
        with self._errors("read", paths[0] if len(paths) == 1 else self.path()):
            fetched = self.fs.cat(paths, on_error="return")
        if not isinstance(fetched, dict):
            fetched = {paths[0]: fetched}
        result: dict[str, bytes] = {}
        for path in paths:
            data = fetched.get(path)
            if isinstance(data, BaseException):
                with self._errors("read", path):
                    raise data
            if data is None:
                raise StorageError(f"cannot read {self.url(path)}: not found")
            result[path] = bytes(data)
        return result

    def write_bytes(self, path: str, data: bytes) -> None:
        with self._errors("write", path):
            self.fs.pipe_file(path, data)

    def replace(self, path: str, data: bytes) -> None:
        """Replace one small object so a reader sees the old content or the new, never part of either.

        The new content is written beside it and moved over it: a rename on disk, a server-side copy on S3,
        both of which swap the whole object at once.
        """
        temporary = f"{path}.tmp-{uuid.uuid4().hex}"
        self.write_bytes(temporary, data)
        with self._errors("replace", path):
            self.fs.mv(temporary, path)

    def remove(self, path: str) -> None:
        """Delete a file or a folder with everything in it; a missing path is not an error."""
        with self._errors("delete", path):
            if self.fs.exists(path):
                self.fs.rm(path, recursive=True)

    def size(self, path: str) -> int:
        with self._errors("check", path):
            return int(self.fs.size(path))

    def checksum(self, path: str) -> str | None:
        """The store's own content hash (the S3 ETag), or None where the filesystem keeps none."""
        if self.protocol not in S3_PROTOCOLS:
            return None
        with self._errors("check", path):
            etag = self.fs.info(path).get("ETag")
        return etag.strip('"') if etag else None
