"""``fold`` of a ~50 MB ``pmcstat -R LOG -o`` record log, and ``pmc resolve`` of the same records as a raw hwpmc log.

There is no reference tool for record logs (pmcstat itself cannot name a Rust
module's functions: freebsd-facts §6), so each row is tracebridge against
itself: with the native core, with TRACEBRIDGE_NO_NATIVE=1, and, given
``--baseline REV``, the code of that revision (an archive of it in a scratch
directory, its native core built in place) -- the speed-up of the current
code, measured in the same run.  The text log is bench_memory.make_pmclog's
(callchains of the fixture module rem_legacy_fp.ko and the test kernel, drawn
from a pool of 20,000); the raw log holds the same records packed as
``sys/sys/pmclog.h`` lays them out.  Every output must be byte-identical.
Throughput is the input's size over the best CPU time (user+system, the
steady measure on a shared machine); wall times are printed beside it.  A last
table times the scan alone, in this process: each scanner over the text log's
bytes (every line it stops at skipped), CPU time, best of ``--repeat``.

    python benchmarks/bench_pmclog.py [--megabytes 50] [--repeat 3] [--baseline REV]
"""

from __future__ import annotations

import argparse
import os
import struct
import subprocess
import sys
import tempfile
import time

from _timing import cpu_time, wall_time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "readers"))

from bench_memory import MODULE, TEST_KERNEL, make_pmclog  # noqa: E402
from pmclog_binary import padded, record  # noqa: E402

FOLD = ["fold", "--module", MODULE, "--module", TEST_KERNEL]
RESOLVE = ["pmc", "resolve", "-m", MODULE, "--kernel", TEST_KERNEL, "-q"]
PURE = {"TRACEBRIDGE_NO_NATIVE": "1"}


def binary_copy(text: str, binary: str) -> None:
    """The text log's records as a little-endian raw hwpmc log (initlog, allocate, map-in, callchain)."""
    with open(text, "rb") as src, open(binary, "wb") as out:
        out.write(record(3, struct.pack("<IIQqq", 0x09030000, 0x8C, 3_000_000_000, 0, 0) + bytes(64)))
        chain: list[bytes] = []
        pcs: list[int] = []
        for line in src:
            words = line.split()
            if words[0] == b"...":
                pcs.append(int(words[1], 16))
                continue
            if chain:
                out.write(_callchain(chain, pcs))
                chain, pcs = [], []
            if words[0] == b"callchain":
                chain = words[1:]
            elif words[0] == b"map-in":
                out.write(record(14, struct.pack("<iIQ", int(words[1]), 0, int(words[2], 16))
                                 + padded(words[3].strip(b'"'))))
            elif words[0] == b"allocate":
                out.write(record(17, struct.pack("<IIII", int(words[1], 16), 0, int(words[3], 16), 0)
                                 + padded(words[2].strip(b'"'))))
        if chain:
            out.write(_callchain(chain, pcs))


def _callchain(header: list[bytes], pcs: list[int]) -> bytes:
    pid, pmcid, cpu, _, mode = header
    flags = int(cpu) << 16 | (mode == b"u")
    return record(16, struct.pack("<iIII", int(pid), 0, int(pmcid, 16), flags) + struct.pack(f"<{len(pcs)}Q", *pcs))


def baseline_tree(revision: str, directory: str) -> str:
    """The package at ``revision``, unpacked in ``directory`` with its native core built in place."""
    archive = subprocess.run(["git", "-C", ROOT, "archive", revision], check=True, capture_output=True).stdout
    os.makedirs(directory)
    subprocess.run(["tar", "-x", "-C", directory], input=archive, check=True)
    subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--inplace"], cwd=directory, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return directory


def run(tree: str, args: list[str], out: str, repeat: int, env: dict[str, str]) -> tuple[float, float, bytes]:
    """Best wall and CPU seconds of the command by the package in ``tree``, and what it wrote."""
    saved = dict(os.environ)
    os.environ.update({"PYTHONPATH": tree, **env})
    try:
        # Without its warnings (the generated PCs lie mid-function, so the module "does not fit").
        command = ["bash", "-c", 'exec "$@" 2>/dev/null', "-", sys.executable, "-P", "-m", "tracebridge", *args, "-o", out]
        subprocess.run(command, check=True)  # untimed: fills the bytecode cache
        wall, cpu = wall_time(command, repeat), cpu_time(command, repeat)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    with open(out, "rb") as f:
        return wall, cpu, f.read()


def scan_seconds(scan, data: bytes, repeat: int) -> float:
    """Best CPU seconds of ``scan`` over all of ``data`` (as pmcstat.CHUNK batches), skipping the lines it stops at."""
    from tracebridge.readers.callchain_scan import FULL, OTHER
    from tracebridge.readers.pmcstat import CHUNK

    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        pos, line, batched = 0, 0, 0
        while pos < len(data):
            pos, line, reason, _, pcs, _ = scan(data, pos, line, None, batched, CHUNK)
            batched = 0 if reason == FULL else batched + len(pcs) // 8
            if reason == OTHER:
                pos, line = data.index(b"\n", pos) + 1, line + 1
            elif reason != FULL:
                break
        best = min(best, time.process_time() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--baseline", help="a git revision to compare with (e.g. the commit before a change)")
    args = parser.parse_args()
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["PYTHONPYCACHEPREFIX"] = os.path.join(tmp, "pycache")
        text, binary = os.path.join(tmp, "pmcstat-o.txt"), os.path.join(tmp, "pmc.log")
        make_pmclog(text, int(args.megabytes * 1e6), 20000)
        binary_copy(text, binary)
        trees = [("native", ROOT, {}), ("pure Python", ROOT, PURE)]
        if args.baseline:
            base = baseline_tree(args.baseline, os.path.join(tmp, "baseline"))
            trees += [(f"{args.baseline}, native", base, {}), (f"{args.baseline}, pure Python", base, PURE)]
        print(subprocess.run([sys.executable, "-m", "tracebridge", "--version"], capture_output=True, text=True,
                             check=True, env={**os.environ, "PYTHONPATH": ROOT}).stdout.strip().replace("\n", ", "))
        print("\n| input | code | wall s | CPU s | MB/s (CPU) | CPU speed-up over the baseline |")
        print("|---|---|---|---|---|---|")
        same = True
        for label, capture, command in (("fold, `-o` text log", text, FOLD), ("pmc resolve, raw hwpmc log", binary, RESOLVE)):
            size = os.path.getsize(capture) / 1e6
            times, outputs = [], set()
            for number, (code, tree, env) in enumerate(trees):
                wall, cpu, written = run(tree, [*command, capture], os.path.join(tmp, f"out{number}"), args.repeat, env)
                outputs.add(written)
                times.append((code, wall, cpu))
            same = same and len(outputs) == 1
            before = {code.split(", ")[-1]: cpu for code, _, cpu in times[2:]}
            for code, wall, cpu in times:
                speedup = f"{before[code] / cpu:.2f}x" if code in before else "-"
                print(f"| {label}, {size:.0f} MB | {code} | {wall:.2f} | {cpu:.2f} | {size / cpu:.0f} | {speedup} |")
        sys.path.insert(0, ROOT)
        from tracebridge.readers.callchain_scan import scan_callchains
        from tracebridge.support import native

        with open(text, "rb") as f:
            data = f.read()
        print("\n| scan alone, `-o` text log | CPU s | MB/s |")
        print("|---|---|---|")
        for code, scan in (("native", native.core and native.core.callchain_scan), ("pure Python", scan_callchains)):
            if scan is not None:
                seconds = scan_seconds(scan, data, args.repeat)
                print(f"| {code} | {seconds:.3f} | {len(data) / 1e6 / seconds:.0f} |")
    if not same:
        raise SystemExit("the outputs differ")


if __name__ == "__main__":
    main()
