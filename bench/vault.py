"""Vault throughput and memory on the local backend, against plain file copies and ``age``.

    python bench/vault.py                 # a 1 GiB file
    python bench/vault.py --size 64M      # a quick run

Everything happens in a temporary directory: a random source file, instance folders and
SQLite databases. Each measured operation runs in its own child process, after ``sync`` so
that earlier writes are not still draining, and the median of ``--repeat`` runs counts. Peak
RSS is the child's high-water mark, reset just before the operation (Linux
``/proc/self/clear_refs``; elsewhere ``ru_maxrss``, which may hide growth below the peak of
start-up). Prints one ``name = value`` line per figure:

- ``put_vs_age``: ``megabox vault put FILE``, the whole process (start-up, encryption,
  SHA-256, fsync, commit), over ``age -e -r RECIPIENT -o OUT FILE``; ``get_vs_age``:
  ``megabox vault get ID -o OUT`` over ``age -d -i IDENTITY -o OUT``. Each ratio is the
  median of the per-run ratios, the runs of both tools interleaved. Skipped, with a line
  saying so, when ``age`` is not installed (Debian: ``apt-get install age``);
- ``megabox_help_seconds`` and ``python_start_seconds``: what starting ``megabox`` costs, and
  what a bare interpreter costs, of the figures above;

- ``put_ratio``: ``service.put_path`` (encrypt, SHA-256, write, fsync, commit) over
  ``shutil.copyfile``; ``put_ratio_vs_durable_copy`` over copyfile followed by fsync, which
  is the same durability the vault gives;
- ``get_ratio``: ``service.iter_plaintext`` written to a file, over ``shutil.copyfile``;
- ``*_rss_growth_mib``: peak RSS above the child's RSS before the operation;
- ``range_ratio``: a random 64 KiB ``service.read_range`` over a seek-and-read of the source;
  it includes the record's primary-key lookup, which ``range_ratio_cached_row`` leaves out;
- ``crypto_floor_ratio``: SHA-256 plus AES-GCM of the data in memory, over copyfile: the
  least a put can cost on this machine.
"""

from __future__ import annotations

import argparse
import filecmp
import hashlib
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MIB = 1024 * 1024
DEFAULT_SIZE = 1024 * MIB
RANGE_BYTES = 64 * 1024
DEFAULT_RANGES = 200
DEFAULT_REPEAT = 5
FLOOR_SAMPLE_BYTES = 64 * MIB
_UNITS = {"": 1, "K": 1024, "M": MIB, "G": 1024 * MIB}


def parse_size(text: str) -> int:
    unit = text[-1:].upper() if text[-1:].isalpha() else ""
    if unit not in _UNITS or not text[: len(text) - len(unit)].isdigit():
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (try 1G, 64M or 1048576)")
    return int(text[: len(text) - len(unit)]) * _UNITS[unit]


def make_app(workdir: Path) -> Any:
    from app import create_app

    return create_app(
        {
            "ENV": "testing",
            "INSTANCE_PATH": str(workdir / "instance"),
            "DATABASE_URL": f"sqlite:///{workdir / 'bench.db'}",
            "SECRET_KEY": "bench",
            "STORAGE_URL": "",
        }
    )


def start_rss_window() -> int:
    """Reset the peak-RSS mark where the platform allows it; returns the RSS to grow from."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        # ru_maxrss is in KiB on Linux.
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return _proc_status_bytes("VmRSS")


def peak_rss() -> int:
    try:
        return _proc_status_bytes("VmHWM")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _proc_status_bytes(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise OSError(f"no {field} in /proc/self/status")


def child(operation: str, workdir: Path, argument: str) -> dict[str, Any]:
    """Run one measured operation in this (child) process and return its figures."""
    from app.extensions import db
    from app.vault import service

    app = make_app(workdir)
    output = workdir / "plaintext.out"
    with app.app_context():
        service.current_vault()
        # get writes a fresh file, as copyfile does: rewriting one costs its truncation first.
        output.unlink(missing_ok=True)
        os.sync()
        if operation == "put":
            baseline = start_rss_window()
            started = time.perf_counter()
            stored = service.put_path(db.session, argument, kind="bench")
            db.session.commit()
            seconds = time.perf_counter() - started
            return {"seconds": seconds, "rss": peak_rss() - baseline, "id": stored.id}
        if operation == "get":
            baseline = start_rss_window()
            started = time.perf_counter()
            with open(output, "wb") as out, service.iter_plaintext(db.session, argument) as plain:
                plain.copy_to(out.write)
            seconds = time.perf_counter() - started
            return {"seconds": seconds, "rss": peak_rss() - baseline}
        object_id, count = argument.split(":")
        return time_ranges(db.session, object_id, workdir / "source.bin", int(count))
    raise ValueError(operation)


def time_ranges(session: Any, object_id: str, source: Path, count: int) -> dict[str, Any]:
    from app.vault import service

    size = source.stat().st_size
    rng = random.Random(0)
    starts = [rng.randrange(0, size - RANGE_BYTES + 1) for _ in range(count)]
    started = time.perf_counter()
    for start in starts:
        service.read_range(session, object_id, start, start + RANGE_BYTES - 1)
    vault_seconds = time.perf_counter() - started
    # Holding the record keeps it in the session's identity map: no query per read.
    stored = service.get_object(session, object_id)
    started = time.perf_counter()
    for start in starts:
        service.read_range(session, stored.id, start, start + RANGE_BYTES - 1)
    cached_seconds = time.perf_counter() - started
    with open(source, "rb", buffering=0) as handle:
        started = time.perf_counter()
        for start in starts:
            handle.seek(start)
            handle.read(RANGE_BYTES)
        plain_seconds = time.perf_counter() - started
    return {
        "vault": vault_seconds / count,
        "cached": cached_seconds / count,
        "plain": plain_seconds / count,
    }


def run_child(operation: str, workdir: Path, argument: str) -> dict[str, Any]:
    completed = subprocess.run(
        [sys.executable, __file__, "--child", operation, "--workdir", str(workdir), argument],
        capture_output=True,
        text=True,
    )
    if completed.returncode:
        sys.exit(f"the {operation} run failed:\n{completed.stderr}")
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def write_source(path: Path, size: int) -> None:
    with open(path, "wb") as out:
        remaining = size
        while remaining:
            block = min(remaining, 4 * MIB)
            out.write(os.urandom(block))
            remaining -= block


def timed_copy(source: Path, target: Path, durable: bool) -> float:
    os.sync()
    started = time.perf_counter()
    shutil.copyfile(source, target)
    if durable:
        fd = os.open(target, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
    seconds = time.perf_counter() - started
    target.unlink()
    return seconds


def crypto_floor(size: int) -> float:
    """Seconds to SHA-256 and AES-GCM ``size`` bytes in memory, from a sample scaled up."""
    sample = os.urandom(min(size, FLOOR_SAMPLE_BYTES)) or b"\0"
    aead = AESGCM(os.urandom(32))
    segment = 64 * 1024
    view = memoryview(sample)
    started = time.perf_counter()
    hashlib.sha256(sample)
    for offset in range(0, len(sample), segment):
        aead.encrypt(bytes(12), view[offset : offset + segment], None)
    return (time.perf_counter() - started) * size / len(sample)


def timed_process(
    command: Sequence[str | Path], env: dict[str, str] | None = None
) -> tuple[float, str]:
    """Wall-clock seconds of a whole process, after ``sync``, and its standard output."""
    os.sync()
    started = time.perf_counter()
    completed = subprocess.run(
        [str(part) for part in command], env=env, capture_output=True, text=True
    )
    seconds = time.perf_counter() - started
    if completed.returncode:
        sys.exit(f"{command[0]} failed:\n{completed.stderr}")
    return seconds, completed.stdout


def cli_environment(workdir: Path) -> dict[str, str]:
    """The environment of a ``megabox`` process on its own instance, whatever the caller's
    own MEGABOX_* settings point at."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("MEGABOX_")}
    env["MEGABOX_INSTANCE_PATH"] = str(workdir / "cli-instance")
    return env


def against_age(workdir: Path, source: Path, runs: int) -> dict[str, Any]:
    """``megabox vault put/get`` and ``age -e/-d`` as whole processes, interleaved run by run."""
    megabox = Path(sys.executable).parent / "megabox"
    age, keygen = shutil.which("age"), shutil.which("age-keygen")
    if age is None or keygen is None:
        return {}
    env = cli_environment(workdir)
    timed_process([megabox, "db", "upgrade"], env)
    identity = workdir / "age-identity.txt"
    timed_process([keygen, "-o", identity])
    recipient = timed_process([keygen, "-y", identity])[1].strip()
    sealed, output = workdir / "source.age", workdir / "cli-plaintext.out"
    figures: dict[str, list[float]] = {name: [] for name in ("put", "age_e", "get", "age_d")}
    object_id = ""
    for _ in range(runs):
        sealed.unlink(missing_ok=True)
        encrypt = [age, "-e", "-r", recipient, "-o", sealed, source]
        figures["age_e"].append(timed_process(encrypt)[0])
        seconds, stdout = timed_process([megabox, "vault", "put", source], env)
        figures["put"].append(seconds)
        object_id = stdout.strip()
        output.unlink(missing_ok=True)
        decrypt = [age, "-d", "-i", identity, "-o", output, sealed]
        figures["age_d"].append(timed_process(decrypt)[0])
        output.unlink(missing_ok=True)
        get = [megabox, "vault", "get", object_id, "-o", output]
        figures["get"].append(timed_process(get, env)[0])
    same = filecmp.cmp(source, output, shallow=False)
    helps = [timed_process([megabox, "--help"], env)[0] for _ in range(runs)]
    bare = [timed_process([sys.executable, "-c", "pass"])[0] for _ in range(runs)]
    return {
        "megabox_put_seconds": statistics.median(figures["put"]),
        "age_encrypt_seconds": statistics.median(figures["age_e"]),
        "put_vs_age": statistics.median(
            put / age for put, age in zip(figures["put"], figures["age_e"], strict=True)
        ),
        "megabox_get_seconds": statistics.median(figures["get"]),
        "age_decrypt_seconds": statistics.median(figures["age_d"]),
        "get_vs_age": statistics.median(
            get / age for get, age in zip(figures["get"], figures["age_d"], strict=True)
        ),
        "cli_get_matches_source": same,
        "megabox_help_seconds": statistics.median(helps),
        "python_start_seconds": statistics.median(bare),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--size", type=parse_size, default=DEFAULT_SIZE, help="source size, e.g. 1G"
    )
    parser.add_argument("--ranges", type=int, default=DEFAULT_RANGES, help="random range reads")
    parser.add_argument(
        "--repeat", type=int, default=DEFAULT_REPEAT, help="runs; the median counts"
    )
    parser.add_argument("--child", choices=["put", "get", "range"], help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("argument", nargs="?", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.workdir, args.argument)))
        return
    if args.size < RANGE_BYTES:
        parser.error(f"--size must be at least {RANGE_BYTES}")

    from flask_migrate import upgrade

    with tempfile.TemporaryDirectory(prefix="megabox-bench-") as tmp:
        workdir = Path(tmp)
        source = workdir / "source.bin"
        write_source(source, args.size)
        with make_app(workdir).app_context():
            upgrade()
        runs = range(max(1, args.repeat))
        copy_seconds = statistics.median(
            timed_copy(source, workdir / "copy.bin", False) for _ in runs
        )
        durable_seconds = statistics.median(
            timed_copy(source, workdir / "copy.bin", True) for _ in runs
        )
        puts = [run_child("put", workdir, str(source)) for _ in runs]
        object_id = puts[0]["id"]
        gets = [run_child("get", workdir, object_id) for _ in runs]
        same = filecmp.cmp(source, workdir / "plaintext.out", shallow=False)
        ranges = run_child("range", workdir, f"{object_id}:{args.ranges}")
        floor = crypto_floor(args.size)
        age = against_age(workdir, source, len(runs))
    put_seconds = statistics.median(put["seconds"] for put in puts)
    get_seconds = statistics.median(get["seconds"] for get in gets)

    figures = {
        "size_mib": args.size / MIB,
        "copyfile_seconds": copy_seconds,
        "copyfile_fsync_seconds": durable_seconds,
        "put_seconds": put_seconds,
        "put_ratio": put_seconds / copy_seconds,
        "put_ratio_vs_durable_copy": put_seconds / durable_seconds,
        "put_rss_growth_mib": max(put["rss"] for put in puts) / MIB,
        "get_seconds": get_seconds,
        "get_ratio": get_seconds / copy_seconds,
        "get_rss_growth_mib": max(get["rss"] for get in gets) / MIB,
        "get_matches_source": same,
        "range_read_ms": ranges["vault"] * 1000,
        "range_read_cached_row_ms": ranges["cached"] * 1000,
        "plain_range_read_ms": ranges["plain"] * 1000,
        "range_ratio": ranges["vault"] / ranges["plain"],
        "range_ratio_cached_row": ranges["cached"] / ranges["plain"],
        "crypto_floor_ratio": floor / copy_seconds,
        **age,
    }
    for name, value in figures.items():
        print(f"{name} = {value:.3f}" if isinstance(value, float) else f"{name} = {value}")
    if not age:
        print("age = not installed: put_vs_age and get_vs_age skipped")


if __name__ == "__main__":
    main()
