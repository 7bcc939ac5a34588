"""One writer per lake: a lock held for the length of a run.

On a local disk the lock is an advisory ``flock`` on ``<lake>/_stedi/lock``: the kernel releases it when the
holding process ends, however it ends (SIGKILL included), so a lock left by a dead process is simply free
again. The file also names the holder, for the message a second writer gets.

On S3 there is no such thing as a lock, but there are conditional writes: the lock is an object created
with ``If-None-Match: *`` (exactly one of several writers succeeds), holding a lease the holder renews
every LEASE_SECONDS / 4 with ``If-Match: <its ETag>``. A lock whose lease ran out, or whose holder is a dead
process on this same host, is taken over with ``If-Match`` on the ETag that was judged stale, so two writers
cannot both take it over. Before it publishes, a run renews its lease once more: a run that lost its lock
(paused past its lease, say) fails instead of publishing. Stores that ignore conditional headers (some
older S3-compatible servers) give no such guarantee; see the README.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from stedi_etl.errors import LockError, StorageError, UsageError
from stedi_etl.lake.storage import S3_PROTOCOLS, Store

LEASE_SECONDS = 120.0
POLL_SECONDS = 0.25


def _now() -> datetime:
    return datetime.now(UTC)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


@dataclass
class Holder:
    """Who holds (or held) a lake's lock, as written in the lock."""

    run_id: str
    pid: int
    host: str
    since: str
    expires: str = ""

    @classmethod
    def me(cls, run_id: str) -> Holder:
        return cls(run_id, os.getpid(), socket.gethostname(), _now().isoformat(timespec="seconds"))

    @classmethod
    def parse(cls, data: bytes | None) -> Holder | None:
        try:
            fields = json.loads(data or b"")
            return cls(**{k: fields[k] for k in ("run_id", "pid", "host", "since", "expires") if k in fields})
        except (ValueError, TypeError):
            return None

    def to_json(self) -> bytes:
        return json.dumps(self.__dict__, sort_keys=True).encode()

    def describe(self) -> str:
        return f"run {self.run_id} (pid {self.pid} on {self.host}, since {self.since})"

    def is_stale(self) -> bool:
        """A lease that ran out, or a holder that is a dead process on this host."""
        if self.host == socket.gethostname() and not _alive(self.pid):
            return True
        try:
            return bool(self.expires) and datetime.fromisoformat(self.expires) < _now()
        except ValueError:
            return True


@dataclass
class LakeLock:
    """A held lake lock. ``took_over`` names a dead holder whose run ended without releasing it."""

    lake: str
    holder: Holder
    took_over: Holder | None = None
    _release: Callable[[], None] = field(default=lambda: None, repr=False)
    _confirm: Callable[[], None] = field(default=lambda: None, repr=False)

    def confirm(self) -> None:
        """Raise LockError unless this run still holds the lock (checked right before publishing)."""
        self._confirm()

    def release(self) -> None:
        self._release()


def acquire(
    store: Store, path: str, run_id: str | Callable[[], str], *, wait: float = 0.0, lake: str = ""
) -> LakeLock:
    """Take the lock at ``path``, waiting up to ``wait`` seconds for a live holder; LockError if it stays.

    ``run_id`` may be a function making one: each attempt then takes a fresh id, so the run that gets the
    lock is named at the moment it got it, and a run that waited is not named before the run it waited for
    (run ids sort by time: the newest is the one whose data is current).
    """
    deadline = time.monotonic() + max(wait, 0.0)
    take = _take_s3 if store.protocol in S3_PROTOCOLS else _take_local
    while True:
        lock, holder = take(store, path, run_id() if callable(run_id) else run_id, lake)
        if lock is not None:
            return lock
        if time.monotonic() >= deadline:
            who = holder.describe() if holder else "another run (still starting)"
            hint = f"; waited {wait:g}s" if wait > 0 else "; try again later, or --wait SECONDS"
            raise LockError(f"lake {lake} is locked by {who}{hint}")
        time.sleep(POLL_SECONDS)


# --- local disk: flock ----------------------------------------------------------------------------------


def _take_local(store: Store, path: str, run_id: str, lake: str) -> tuple[LakeLock | None, Holder | None]:
    import fcntl

    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except (NotADirectoryError, FileExistsError):
        raise UsageError(f"lake {lake} is not a folder: a file is in the way") from None
    except OSError as err:
        raise StorageError(f"cannot lock {lake}: {err.strerror or err}") from None
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        held_by = None
        # The holder writes its name just after it takes the lock; give it a moment to.
        for _ in range(20):
            with contextlib.suppress(OSError):
                held_by = Holder.parse(os.pread(descriptor, 4096, 0))
            if held_by is not None:
                break
            time.sleep(0.01)
        os.close(descriptor)
        return None, held_by
    # The lock is ours. A holder still written in the file ended without releasing it (killed, crashed).
    previous = Holder.parse(os.pread(descriptor, 4096, 0))
    holder = Holder.me(run_id)
    os.ftruncate(descriptor, 0)
    os.pwrite(descriptor, holder.to_json(), 0)

    def release() -> None:
        with contextlib.suppress(OSError):
            os.ftruncate(descriptor, 0)  # an empty lock file: nobody holds it
            fcntl.flock(descriptor, fcntl.LOCK_UN)
            os.close(descriptor)

    return LakeLock(lake, holder, previous, _release=release), None


# --- S3: conditional writes and a lease -------------------------------------------------------------------


def _take_s3(store: Store, path: str, run_id: str, lake: str) -> tuple[LakeLock | None, Holder | None]:
    holder = Holder.me(run_id)
    holder.expires = (_now() + timedelta(seconds=LEASE_SECONDS)).isoformat(timespec="seconds")
    etag = store.create_exclusive(path, holder.to_json())
    previous = None
    if etag is None:
        found = store.read_with_etag(path)
        if found is None:
            return None, None  # released between our two requests: try again
        data, seen_etag = found
        previous = Holder.parse(data)
        if previous is not None and not previous.is_stale():
            return None, previous
        etag = store.replace_if_match(path, holder.to_json(), seen_etag)
        if etag is None:
            return None, previous  # another writer took it over first
    return _leased(store, path, lake, holder, etag, previous), None


def _leased(
    store: Store, path: str, lake: str, holder: Holder, etag: str, previous: Holder | None
) -> LakeLock:
    state: dict[str, Any] = {"etag": etag, "lost": None}
    guard = threading.Lock()
    stop = threading.Event()

    def renew() -> None:
        with guard:
            if state["lost"]:
                raise LockError(state["lost"])
            holder.expires = (_now() + timedelta(seconds=LEASE_SECONDS)).isoformat(timespec="seconds")
            renewed = store.replace_if_match(path, holder.to_json(), state["etag"])
            if renewed is None:
                state["lost"] = f"lost the lock of lake {lake}: another run took it over; nothing published"
                raise LockError(state["lost"])
            state["etag"] = renewed

    def keep_alive() -> None:
        while not stop.wait(LEASE_SECONDS / 4):
            with contextlib.suppress(LockError, StorageError):
                renew()

    def release() -> None:
        stop.set()
        with guard:
            if not state["lost"]:
                with contextlib.suppress(StorageError):
                    store.remove_if_match(path, state["etag"])

    threading.Thread(target=keep_alive, name="stedi-etl-lock-lease", daemon=True).start()
    return LakeLock(lake, holder, previous, _release=release, _confirm=renew)
