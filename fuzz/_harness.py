"""What every fuzz target shares: the promise it checks and the driver that runs it.

The promise (docs/hardening.md): any input gives a result or one line
``tracebridge: ...`` with exit status 2 -- never a traceback, a hang or
unbounded memory.  A target is a list of seed inputs and a ``check(data)``
that feeds one input to tracebridge and raises on a broken promise.  The
same ``check`` runs two ways:

* ``python fuzz/fuzz_<parser>.py --seconds 600`` runs it under atheris
  (libFuzzer, coverage guided; ``pip install atheris``) for minutes, with a
  per-input time limit (a hang) and an RSS limit (a leak or a blow-up);
* ``tests/hardening/test_parsers_fuzz.py`` runs it on hypothesis-mutated
  seeds in the normal suite.

Seeds come from tests/fixtures and tests/data (and the tests' own builders
of pmcstat and kldstat texts), so the fuzzer starts from real inputs.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import functools
import gc
import importlib
import itertools
import io
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
import types
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
MODULES = TESTS / "fixtures" / "modules"
DATA = TESTS / "data"
if str(TESTS) not in sys.path:  # the tests' builders of seed texts
    sys.path.insert(0, str(TESTS))

from tracebridge import cli  # noqa: E402
from tracebridge.image.demangle import demangle_symbol  # noqa: E402

#: Where a target writes the input under test (tmpfs when there is one).
SCRATCH = Path(tempfile.mkdtemp(prefix="tracebridge-fuzz-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
atexit.register(shutil.rmtree, SCRATCH, ignore_errors=True)


class BrokenPromise(AssertionError):
    """tracebridge answered an input with something other than a result or one error line."""


def scratch(name: str, data: bytes) -> str:
    """Write ``data`` to a scratch file called ``name`` and return its path."""
    path = SCRATCH / name
    path.write_bytes(data)
    return str(path)


def run_cli(argv: Sequence[str]) -> tuple[int, str, str]:
    """Run tracebridge in this process; return its status, standard output and standard error.

    A Python exception escaping ``main`` is exactly the traceback the
    promise rules out, so it propagates to the fuzzer as a crash.
    """
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="replace")
    err = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = cli.main(list(argv))
    out.flush()
    return status, out.buffer.getvalue().decode("utf-8", "replace"), err.getvalue()


def check_result(status: int, err: str) -> None:
    """The promise: status 0, or 2 with its error as the last line of standard error.

    Notes and warnings before the error are lines of their own, so every
    line of standard error starts with ``tracebridge:``: a traceback, or a
    message carrying a newline from the input, would not.
    """
    if status not in (0, 2):
        raise BrokenPromise(f"exit status {status}: {err[:2000]!r}")
    lines = err.splitlines()
    if any(not line.startswith("tracebridge: ") for line in lines) or (status == 2 and not lines):
        raise BrokenPromise(f"exit {status} with standard error {err[:2000]!r}")


def check_cli(argv: Sequence[str]) -> int:
    """Run tracebridge and check the promise; return its exit status."""
    status, _, err = run_cli(argv)
    check_result(status, err)
    return status


def check_native_agrees(argv: list[str]) -> None:
    """With the compiled core built, the pure-Python paths print the same bytes."""
    from tracebridge.support import native

    core = native.core
    if core is None:
        return
    ours = run_cli(argv)
    native.core = None
    try:
        theirs = run_cli(argv)
    finally:
        native.core = core
    if ours != theirs:
        raise BrokenPromise(f"native and pure-Python outputs differ for {argv}")


@dataclass(frozen=True)
class Target:
    """One parser under fuzzing: its seeds and its check."""

    name: str
    seeds: Callable[[], list[bytes]]
    check: Callable[[bytes], None]
    #: Longest input libFuzzer makes (the largest seed is always allowed).
    max_len: int = 1 << 16


def files(directory: Path, pattern: str = "*") -> list[bytes]:
    return [p.read_bytes() for p in sorted(directory.glob(pattern)) if p.is_file()]


def from_tests(folder: str, module: str) -> ModuleType:
    """A test module whose builders make seeds (``tests/<folder>/<module>.py``)."""
    if str(TESTS / folder) not in sys.path:
        sys.path.insert(0, str(TESTS / folder))
    return importlib.import_module(module)


def main(target: Target, argv: Sequence[str] | None = None) -> None:
    """Fuzz ``target`` with atheris for ``--seconds``; libFuzzer prints the run count at the end."""
    parser = argparse.ArgumentParser(description=f"Fuzz tracebridge's {target.name} reader with atheris.")
    parser.add_argument("--seconds", type=int, default=600, help="how long to run (default 600)")
    parser.add_argument("--corpus", type=Path, help="corpus directory (default: a fresh one seeded from the tests)")
    parser.add_argument("--timeout", type=int, default=20, help="seconds one input may take before it is a hang")
    parser.add_argument("--rss-limit-mb", type=int, default=1536, help="memory that makes a leak or blow-up")
    parser.add_argument("--plain", type=int, metavar="N",
                        help="instead of fuzzing, run the check on N random mutations of the seeds in a plain "
                             "loop, printing the peak RSS every N/10 inputs (does memory grow without atheris?)")
    args, libfuzzer_args = parser.parse_known_args(argv)

    # Every run parses a new command line with the same parser: build it once, or
    # building it is most of the time of a run on a small input.  (Here only: the
    # test suite keeps the CLI as it is.)
    cli.build_parser = functools.cache(cli.build_parser)
    if args.plain:
        _plain_loop(target, args.plain)
        return
    import atheris  # only the long runs need it

    corpus = args.corpus or Path(tempfile.mkdtemp(prefix=f"fuzz-{target.name}-"))
    corpus.mkdir(parents=True, exist_ok=True)
    seeds = target.seeds()
    for number, seed in enumerate(seeds):
        (corpus / f"seed-{number:03d}").write_bytes(seed)
    max_len = max([target.max_len, *map(len, seeds)])
    for seed in seeds:  # loads every reader the target reaches (they import lazily) before instrumenting
        target.check(seed)
    _instrument(atheris)
    atheris.Setup([sys.argv[0], str(corpus), f"-max_total_time={args.seconds}", f"-timeout={args.timeout}",
                   f"-rss_limit_mb={args.rss_limit_mb}", f"-max_len={max_len}", "-print_final_stats=1",
                   *libfuzzer_args], functools.partial(_one_input, target.check))
    atheris.Fuzz()


_RUNS = itertools.count(1)

#: What the plain loop inserts: separators and escapes the readers care about.
_INSERTS = (b";", b" 12\n", b"\\", b"0x", b"\xff", b"::", b"`", b"\x1c", b"\r\n", b"\n\n", b"callchain")


def _plain_loop(target: Target, count: int) -> None:
    """The check on ``count`` seeded random mutations, without atheris; prints the peak RSS as it goes.

    Under atheris the RSS of some targets climbs by kilobytes per input; the
    same check in this loop shows whether the growth is tracebridge's.
    """
    import random
    import resource

    rng = random.Random(1)
    seeds = target.seeds()
    for number in range(1, count + 1):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 4)):
            at, roll = rng.randint(0, len(data)), rng.random()
            if roll < 0.3:
                del data[at:at + rng.randint(1, 64)]
            elif roll < 0.6:
                data[at:at] = rng.choice(_INSERTS)
            elif at < len(data):
                data[at] = rng.randrange(256)
        _one_input(target.check, bytes(data))
        if number % max(1, count // 10) == 0:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
            print(f"{target.name}: {number} inputs, peak RSS {peak} MB", flush=True)


def _one_input(check: Callable[[bytes], None], data: bytes) -> None:
    """One input, then what a one-command process never needs to free, so the RSS limit sees leaks.

    The demangler's cache holds up to a million names by design; and the CLI
    sets the cyclic collector's thresholds for one command per process, so
    over thousands of commands cycles (caught exceptions and their frames)
    pile up before a full collection: a few KB per input.
    """
    try:
        check(data)
    finally:
        demangle_symbol.cache_clear()
        if next(_RUNS) % 256 == 0:
            gc.collect()


#: Packages whose code reads the input: coverage is measured in these only
#: (instrumenting numpy, pandas and rich as well costs minutes and finds nothing of ours).
INSTRUMENTED = ("tracebridge", "elftools", "demangle")


def _instrument(atheris: ModuleType) -> None:
    for obj in gc.get_objects():
        if (isinstance(obj, types.FunctionType) and isinstance(obj.__module__, str)
                and obj.__module__.partition(".")[0] in INSTRUMENTED):
            atheris.instrument_func(obj)

