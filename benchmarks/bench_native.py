"""The native-core table (issue 13): each row against its reference tool, native and pure Python, one run.

Rows, each timed best-of-``--repeat`` (wall) in the same run as its reference:

1. ``symbols --format json`` on the Rust toolchain's ``librustc_driver-*.so``
   against ``nm --demangle=rust --defined-only`` (target <= 2x nm);
2. ``gen-probes`` (count template) on the same file against nm (<= 3x nm);
3. ``fold`` of a ~53 MB ``pmcstat -G`` callgraph made of the committed
   callgraph tests/data/pmcstat/multi-image.graph, names made distinct per copy,
   against FlameGraph's ``stackcollapse-pmc.pl`` (>= 2x faster);
4. ``fold`` of a ~28 MB DTrace ``stack()`` capture, FlameGraph's
   example-dtrace-stacks.txt x20 with names distinct per copy, against
   ``stackcollapse.pl | rustfilt`` (>= 3x faster).

Every tracebridge row runs twice, with the native core and with
TRACEBRIDGE_NO_NATIVE=1, and the two outputs must be byte-identical.  Before
timing, the native x86-64 length decoder is checked instruction by
instruction against iced-x86 on every function of the big ELF, and its C++
names are demangled both by LLVM (pycxxfilt, where tracebridge lets it) and by
the pure-Python package, which must agree on every one.  FlameGraph is
not shipped: give its directory (``git clone`` it into /tmp, never into this
tree).

    python benchmarks/bench_native.py --flamegraph /tmp/FlameGraph [--elf FILE] [--repeat 3] [--rows 1,2]

tracebridge runs with its bytecode cached (in a scratch ``PYTHONPYCACHEPREFIX``,
filled by one untimed run of each command on a small input first), as an
installed package runs: pip byte-compiles what it installs.  With
``PYTHONDONTWRITEBYTECODE`` set, a checkout would compile its ~60 modules on
every run instead (about 0.1 s each time).
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import subprocess
import sys
import tempfile

from _timing import cpu_time, wall_time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TRACEBRIDGE = [sys.executable, "-m", "tracebridge"]
PURE = {"TRACEBRIDGE_NO_NATIVE": "1"}


def default_elf() -> str | None:
    try:
        sysroot = subprocess.run(["rustc", "--print", "sysroot"], capture_output=True, text=True,
                                 check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    found = sorted(glob.glob(os.path.join(sysroot, "lib", "librustc_driver-*.so")))
    return found[0] if found else None


_LEGACY_HASH = re.compile(r"17h([0-9a-f]{16})E")
_PMC_NAME = re.compile(r"^( *[0-9.]+%  \[[0-9]+\] +)(\S+)", re.M)
_DTRACE_FRAME = re.compile(r"^( +[^`\s]+`)([^+\s]+)", re.M)


def distinct(name: str, copy: int) -> str:
    """The name made distinct per copy and still valid: a legacy Rust hash changed, else a suffix."""
    if name.startswith("0x"):
        return name
    if _LEGACY_HASH.search(name):
        return _LEGACY_HASH.sub(lambda m: f"17h{int(m.group(1), 16) ^ copy:016x}E", name)
    if name.startswith("_R"):
        return name  # v0 has no free-form tail to vary; the copies share these few names
    return f"{name}_{copy}"


def make_callgraph(path: str, megabytes: float) -> int:
    text = open(os.path.join(ROOT, "tests/data/pmcstat/multi-image.graph")).read()
    size = copy = 0
    with open(path, "w") as out:
        while size < megabytes * 1e6:
            size += out.write(_PMC_NAME.sub(lambda m: m.group(1) + distinct(m.group(2), copy), text))
            copy += 1
    return size


def make_dtrace(path: str, example: str, copies: int) -> int:
    text = open(example).read()
    size = 0
    with open(path, "w") as out:
        for copy in range(copies):
            size += out.write(_DTRACE_FRAME.sub(lambda m: m.group(1) + distinct(m.group(2), copy), text))
    return size


def check_decoder(elf: str) -> str:
    """Every instruction of every function of ``elf``: the native length against iced-x86's."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[2]); from x86_lengths import check_every_instruction\n"
        "from tracebridge.image.elf import open_module; from tracebridge.support import native\n"
        "image = open_module(sys.argv[1])\n"
        "print(sum(check_every_instruction(native.core, image.code(f)) for f in image.functions))\n")
    out = subprocess.run([sys.executable, "-c", code, elf, os.path.join(ROOT, "tests", "probes")],
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": _pythonpath()})
    if out.returncode:
        raise SystemExit(f"decoder check failed:\n{out.stderr[-3000:]}")
    return f"{int(out.stdout):,} instructions decided natively, all the same length as iced-x86's"


def check_cpp_names(elf: str) -> str:
    """Every C++ name of ``elf``: tracebridge's reading with pycxxfilt against the pure package's alone."""
    code = (
        "import sys; from tracebridge.image import demangle; from tracebridge.image.elf import open_module\n"
        "names = sorted({f.name for f in open_module(sys.argv[1]).functions if f.name.startswith(('_Z', '__Z'))\n"
        "                and not demangle.demangle_symbol(f.name).is_rust})\n"
        "if demangle._pycxxfilt is None: sys.exit('pycxxfilt is not installed')\n"
        "differ = [n for n in names if demangle._cpp_both(n) != demangle._cpp_pure(n)]\n"
        "print(len(names), sum(demangle._cpp_llvm(n) is not None for n in names), len(differ), *differ[:3])\n")
    out = subprocess.run([sys.executable, "-c", code, elf], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": _pythonpath()})
    if out.returncode:
        raise SystemExit(f"C++ name check failed:\n{out.stderr[-3000:]}")
    names, by_llvm, differ, *examples = out.stdout.split()
    if int(differ):
        raise SystemExit(f"C++ names read differently by pycxxfilt and the pure package ({differ}): {examples}")
    return f"{int(names):,} C++ names, {int(by_llvm):,} read by LLVM, all as the pure package reads them"


def _pythonpath() -> str:
    return os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), ROOT, os.path.join(ROOT, "tests")) if p)


def both_times(command: str | list[str], repeat: int, fresh: str | None = None) -> tuple[float, float]:
    """Best wall and best CPU seconds (on a loaded machine the CPU time is the steadier one); ``fresh``:
    the output file, written anew by each run (:func:`_timing.wall_time`)."""
    return wall_time(command, repeat, fresh), cpu_time(command, repeat, fresh)


def timed(args: list[str], directory: str, repeat: int,
          env: dict[str, str] | None = None) -> tuple[tuple[float, float], dict]:
    """Best wall and CPU times of the command writing ``directory/out``, and every file it wrote there."""
    os.makedirs(directory)
    os.environ.update(env or {})
    try:
        out = os.path.join(directory, "out")
        seconds = both_times([*TRACEBRIDGE, *args, "-o", out], repeat, fresh=out)
    finally:
        for key in env or {}:
            del os.environ[key]
    written = {}
    for name in sorted(os.listdir(directory)):
        with open(os.path.join(directory, name), "rb") as f:
            written[name] = f.read()
    return seconds, written


def cache_bytecode(directory: str) -> None:
    """Children keep their bytecode in ``directory``; one untimed run of each command on a small input fills it."""
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["PYTHONPYCACHEPREFIX"] = directory
    small = os.path.join(ROOT, "tests", "fixtures", "modules", "rem_legacy_fp.ko")
    for command in (["symbols", "--format", "json", small], ["gen-probes", small],
                    ["fold", os.path.join(ROOT, "tests", "data", "pmcstat", "multi-image.graph")],
                    ["fold", os.path.join(ROOT, "examples", "if_em.stack.txt")]):
        subprocess.run([*TRACEBRIDGE, *command], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flamegraph", required=True, help="a FlameGraph checkout (stackcollapse*.pl, example)")
    parser.add_argument("--elf", default=default_elf(), help="the big ELF (default: the toolchain's librustc_driver)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-decoder-check", action="store_true")
    parser.add_argument("--rows", default="1,2,3,4",
                        help="the rows to run, by number (default all: 1,2,3,4; 1,2 for the big ELF only)")
    args = parser.parse_args()
    selected = {int(number) for number in args.rows.split(",")}
    if args.elf is None and selected & {1, 2}:
        raise SystemExit("no librustc_driver-*.so found: give --elf")
    native = subprocess.run([*TRACEBRIDGE, "--version"], capture_output=True, text=True, check=True).stdout
    print(native.strip().replace("\n", ", "))
    if not args.skip_decoder_check and selected & {1, 2}:
        print("decoder check on", os.path.basename(args.elf) + ":", check_decoder(args.elf))
    if selected & {1, 2}:
        print("C++ demangler check on", os.path.basename(args.elf) + ":", check_cpp_names(args.elf))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cache_bytecode(os.path.join(tmp, "pycache"))
        graph, stacks = os.path.join(tmp, "pmc.graph"), os.path.join(tmp, "stacks.txt")
        cases = []
        if selected & {1, 2}:
            nm = both_times(["nm", "--demangle=rust", "--defined-only", args.elf], args.repeat)
        if 1 in selected:
            cases.append((f"symbols --format json, {os.path.basename(args.elf)}",
                          ["symbols", "--format", "json", args.elf], "nm --demangle=rust --defined-only", nm, 2.0))
        if 2 in selected:
            cases.append(("gen-probes (count template), same file", ["gen-probes", args.elf], "nm", nm, 3.0))
        if 3 in selected:
            graph_mb = make_callgraph(graph, 53) / 1e6
            cases.append((f"fold, {graph_mb:.0f} MB pmcstat -G callgraph", ["fold", graph], "stackcollapse-pmc.pl",
                          both_times(f"perl {args.flamegraph}/stackcollapse-pmc.pl {graph}", args.repeat), 0.5))
        if 4 in selected:
            stacks_mb = make_dtrace(stacks, os.path.join(args.flamegraph, "example-dtrace-stacks.txt"), 20) / 1e6
            cases.append((f"fold, {stacks_mb:.0f} MB DTrace stack() capture", ["fold", stacks],
                          "stackcollapse.pl \\| rustfilt",
                          both_times(f"perl {args.flamegraph}/stackcollapse.pl {stacks} | rustfilt", args.repeat),
                          1 / 3))
        for number, (label, command, reference_label, reference, target) in enumerate(cases):
            fast, fast_out = timed(command, os.path.join(tmp, f"native{number}"), args.repeat)
            slow, slow_out = timed(command, os.path.join(tmp, f"pure{number}"), args.repeat, PURE)
            rows.append((label, reference_label, reference, fast, slow, target, fast_out == slow_out))
    print()
    print("| work | reference: wall s / CPU s | native: wall s (ratio) / CPU s (ratio) "
          "| pure Python: wall s (ratio) / CPU s (ratio) | target (wall) | met, native | outputs identical |")
    print("|---|---|---|---|---|---|---|")

    def against(ours: tuple[float, float], reference: tuple[float, float]) -> str:
        return (f"{ours[0]:.2f} ({ours[0] / reference[0]:.2f}x) / {ours[1]:.2f} ({ours[1] / reference[1]:.2f}x)")

    for label, reference_label, reference, fast, slow, target, same in rows:
        met = "yes" if fast[0] / reference[0] <= target else "no"
        print(f"| {label} | {reference_label}: {reference[0]:.2f} / {reference[1]:.2f} | {against(fast, reference)} | "
              f"{against(slow, reference)} | <= {target:.2f}x | {met} | {'yes' if same else 'NO'} |")
    if not all(row[-1] for row in rows):
        raise SystemExit("native and pure-Python outputs differ")


if __name__ == "__main__":
    main()
