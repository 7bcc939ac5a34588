"""The stedi-starter run on S3 over loopback against the same run on local disk; the target is at most 2x.

    python benchmarks/s3_vs_local.py [--data DIR] [--repeat N] [--in-process-server]

Starts moto's ThreadedMotoServer on 127.0.0.1 and a free port, in a process of its own by default (a real
S3 endpoint does not share the pipeline's interpreter; ``--in-process-server`` runs it as a thread of this
process instead), lands the data set into a bucket with ``land_files``, then measures two ways, local and
S3 alternating, each into a fresh lake:

- cli: ``stedi-etl run-all`` as a user runs it, one process per run (start-up, imports, S3 client
  included); landing and lake on disk, or both on S3;
- pipeline: ``stedi_etl.run.runner.run()`` in this process after one untimed run of each (imports and the S3
  client are warm), so only the pipeline's own work and its I/O are timed.

Prints every time, the medians and fastest runs, and the ratios S3 / local; exits 1 when a ratio of
medians is over the target. The machine's load average is printed too: on a shared machine the S3 run,
which keeps two processes busy, suffers from other load more than the local one.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(os.environ.get("STEDI_DATA", REPO.parent / "shared" / "data")) / "stedi-starter"
BUCKET = "stedi-bench"
TARGET_RATIO = 2.0

_SERVER = """
import logging, sys
from moto.server import ThreadedMotoServer
logging.getLogger("werkzeug").setLevel(logging.ERROR)
server = ThreadedMotoServer(ip_address="127.0.0.1", port=int(sys.argv[1]), verbose=False)
server.start()
sys.stdin.read()  # until the benchmark closes our stdin
server.stop()
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until_up(endpoint: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="landing data set (stedi-starter)")
    parser.add_argument("--repeat", type=int, default=7, help="timed runs of each kind (default 7)")
    parser.add_argument("--in-process-server", action="store_true", help="run moto as a thread in here")
    args = parser.parse_args()
    if not (args.data / "customer" / "landing").is_dir():
        parser.error(f"no landing data at {args.data} (set --data or STEDI_DATA)")

    # Fake credentials, and nothing of a developer's own AWS configuration.
    os.environ.update(
        AWS_ACCESS_KEY_ID="benchmark-key-id",
        AWS_SECRET_ACCESS_KEY="benchmark-secret",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_MAX_ATTEMPTS"):
        os.environ.pop(name, None)
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    if args.in_process_server:
        import logging

        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        thread_server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        thread_server.start()
        stop: Callable[[], object] = thread_server.stop
    else:
        command = [sys.executable, "-c", _SERVER, str(port)]
        server = subprocess.Popen(command, stdin=subprocess.PIPE, text=True)
        stop = lambda: server.communicate(input="", timeout=30)  # noqa: E731
    work = Path(tempfile.mkdtemp(prefix="stedi-bench-"))
    try:
        wait_until_up(endpoint)
        return bench(args, endpoint, work)
    finally:
        stop()
        shutil.rmtree(work, ignore_errors=True)


def bench(args: argparse.Namespace, endpoint: str, work: Path) -> int:
    import boto3

    from stedi_etl.commands.land import land_files
    from stedi_etl.run.runner import run

    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=BUCKET)
    started = time.perf_counter()
    landed = land_files(str(args.data), f"s3://{BUCKET}/landing", endpoint_url=endpoint)
    s3_landing = f"s3://{BUCKET}/landing"
    print(f"land: {len(landed.uploaded)} files into {s3_landing} in {time.perf_counter() - started:.2f}s")
    lakes = iter(range(1_000_000))

    def cli(kind: str) -> float:
        index = next(lakes)
        landing, lake = (str(args.data), str(work / f"lake-{index}"))
        if kind == "s3":
            landing, lake = s3_landing, f"s3://{BUCKET}/lake-{index}"
        command = [sys.executable, "-m", "stedi_etl", "run-all", "--landing", landing, "--lake", lake, "-q"]
        command += ["--s3-endpoint-url", endpoint]
        started = time.perf_counter()
        subprocess.run(command, check=True, cwd=REPO)
        return time.perf_counter() - started

    def pipeline(kind: str) -> float:
        index = next(lakes)
        landing, lake = (str(args.data), str(work / f"lake-{index}"))
        if kind == "s3":
            landing, lake = s3_landing, f"s3://{BUCKET}/lake-{index}"
        started = time.perf_counter()
        result = run(landing, lake, endpoint_url=endpoint)
        seconds = time.perf_counter() - started
        if not result.ok:
            raise SystemExit(f"the {kind} run failed: {[t.reason for t in result.failed]}")
        return seconds

    pipeline("local"), pipeline("s3")  # imports, the S3 client: not what is compared
    ratios = {}
    for name, measure in (("cli", cli), ("pipeline", pipeline)):
        times: dict[str, list[float]] = {"local": [], "s3": []}
        for _ in range(args.repeat):
            for kind in ("local", "s3"):
                times[kind].append(measure(kind))
        local, s3 = statistics.median(times["local"]), statistics.median(times["s3"])
        ratios[name] = s3 / local
        for kind in ("local", "s3"):
            print(f"{name:<9}{kind:<6}" + " ".join(f"{t:.3f}" for t in times[kind]))
        print(f"{name:<9}median local {local:.3f}s  s3 {s3:.3f}s  ratio s3/local {ratios[name]:.2f}")
        local, s3 = min(times["local"]), min(times["s3"])
        print(f"{name:<9}fastest local {local:.3f}s  s3 {s3:.3f}s  ratio s3/local {s3 / local:.2f}")
    where = "in this process" if args.in_process_server else "in a process of its own"
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"server: moto at {endpoint}, {where}; data: {args.data}; {os.cpu_count()} CPUs, load {load}")
    verdict = "ok" if max(ratios.values()) <= TARGET_RATIO else "OVER TARGET"
    print(
        f"{verdict}: s3/local {ratios['cli']:.2f} end to end (cli), {ratios['pipeline']:.2f} pipeline only; "
        f"target <= {TARGET_RATIO:.1f}"
    )
    return 0 if verdict == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
