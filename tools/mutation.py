#!/usr/bin/env python3
"""Mutation testing of tracebridge's core modules: run mutmut, print the kill rate per module.

    python tools/mutation.py                      # every core module ([tool.mutmut] only_mutate)
    python tools/mutation.py dglob fbt_isa -j 2   # some of them, two mutants at a time
    python tools/mutation.py --report             # only the table, from the last run's results
    python tools/mutation.py tracebridge.probes.dglob.x__match__mutmut_3   # one mutant again (after a new test)

mutmut (``pip install -e '.[mutation]'``) copies the package and the tests into
``mutants/``, makes every small change it knows to the modules listed in
``[tool.mutmut] only_mutate`` of pyproject.toml, and runs, for each change,
the tests of ``pytest_add_cli_args_test_selection`` that reach the changed
function, plus the module's own tests (``[tool.tracebridge.mutation-tests]``:
mutmut links a test to a function only when the function runs inside that
test, which misses tests that reach it through a cached fixture).  A change
no test notices "survived".  Some changes cannot be
noticed by any test because they do not change what the code does
("equivalent mutants"); docs/testing.md lists those with a reason, one per
line as ``- `mutant name`: why``, and this script leaves them out of the
rate it prints.  Listed names that no longer survive are reported: the list
goes stale when a module changes (mutmut numbers mutants per function).

Not part of .ci/run: a full run takes about an hour on one core.  Run it
before resolving an issue that touches the core, and add a test (or a line
in docs/testing.md) for every new survivor; ``mutmut show NAME`` shows one.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tomllib
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "testing.md"
#: mutmut's exit-code classes (mutmut/stats.py): what counts as the tests noticing the change.
KILLED = {1: "killed", 3: "killed", 36: "timeout", 24: "timeout", -24: "timeout", 152: "timeout", 255: "timeout",
          -11: "crash", -9: "crash"}
_EQUIVALENT = re.compile(r"^- `([\w.]+__mutmut_\d+)`")


def core_modules() -> list[str]:
    """The mutated files, from pyproject.toml (the one place they are listed)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
    return list(config["only_mutate"])


def module_tests() -> dict[str, list[str]]:
    """The test files run for every mutant of each core module, from pyproject.toml."""
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]
    return tool.get("tracebridge", {}).get("mutation-tests", {})


def dotted(path: str) -> str:
    return path.removesuffix(".py").replace("/", ".")


def equivalents() -> set[str]:
    if not DOC.exists():
        return set()
    return {m[1] for line in DOC.read_text().splitlines() if (m := _EQUIVALENT.match(line))}


def results(path: str) -> dict[str, int | None]:
    meta = ROOT / "mutants" / (path + ".meta")
    if not meta.exists():
        return {}
    return json.loads(meta.read_text())["exit_code_by_key"]


def classify(exit_code: int | None) -> str:
    if exit_code is None:
        return "not run"
    if exit_code == 0:
        return "survived"
    if exit_code in (5, 33):
        return "no tests"
    return KILLED.get(exit_code, "suspicious")


def report(paths: list[str]) -> int:
    """Print the table; the exit status is 1 when some mutant survives that is not listed as equivalent."""
    listed = equivalents()
    print(f"{'module':<34} {'mutants':>7} {'killed':>7} {'timeout':>7} {'survived':>8} {'no tests':>8} "
          f"{'equiv.':>6} {'not run':>7} {'kill rate':>9}")
    totals: Counter[str] = Counter()
    unexplained, stale = [], []
    for path in paths:
        found = results(path)
        counts = Counter(classify(code) for code in found.values())
        equivalent = {name for name, code in found.items() if name in listed and classify(code) == "survived"}
        # A listed mutant that was not run this time (a run of some functions only) says nothing either way.
        stale += sorted(name for name, code in found.items()
                        if name in listed and classify(code) not in ("survived", "not run"))
        unexplained += sorted(name for name, code in found.items()
                              if classify(code) in ("survived", "no tests") and name not in equivalent)
        survived = counts["survived"] - len(equivalent)
        detected = counts["killed"] + counts["timeout"] + counts["crash"]
        judged = detected + survived + counts["no tests"] + counts["suspicious"]
        rate = f"{100 * detected / judged:8.1f}%" if judged else "        -"
        print(f"{dotted(path):<34} {len(found):>7} {counts['killed']:>7} {counts['timeout']:>7} {survived:>8} "
              f"{counts['no tests']:>8} {len(equivalent):>6} {counts['not run']:>7} {rate}")
        totals.update(counts)
        totals["equivalent"] += len(equivalent)
    if unexplained:
        print(f"\n{len(unexplained)} surviving mutants are neither killed nor listed as equivalent "
              f"in {DOC.relative_to(ROOT)} (mutmut show NAME):")
        for name in unexplained:
            print("  " + name)
    if stale:
        print(f"\nlisted as equivalent but no longer surviving (remove from {DOC.relative_to(ROOT)}):")
        for name in stale:
            print("  " + name)
    return 1 if unexplained else 0


class _ModuleTests(dict[str, set[str]]):
    """mutmut's function -> tests map, where a core module's function also gets its module's tests."""

    def __init__(self, linked: dict[str, set[str]], by_module: dict[str, set[str]], only: bool) -> None:
        super().__init__(linked)
        self.by_module = by_module
        for function, tests in self.items():
            module = function.rpartition(".")[0]
            if only and module in by_module:
                tests.clear()
            tests |= by_module.get(module, set())

    def __missing__(self, function: str) -> set[str]:
        self[function] = set(self.by_module.get(function.rpartition(".")[0], set()))
        return self[function]

    def get(self, function: str, default: object = None) -> object:  # type: ignore[override]
        return self[function] if function in self or function.rpartition(".")[0] in self.by_module else default


def run_mutmut(argv: list[str], only: bool) -> int:
    """``mutmut ARGV``, its test map widened by [tool.tracebridge.mutation-tests] once the stats are in.

    ``only``: a core module's mutants run its listed tests alone, not also every test mutmut saw
    reach the function (for a module whose functions nearly every test calls, like demangle).
    """
    import mutmut.__main__ as mutmut_main
    from mutmut.state import state

    selection = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"][
        "pytest_add_cli_args_test_selection"]
    subsets = module_tests()
    outside = [f for files in subsets.values() for f in files
               if not any(f == s or f.startswith(s.rstrip("/") + "/") for s in selection)]
    if outside:
        print(f"mutation.py: not in pytest_add_cli_args_test_selection: {', '.join(outside)}", file=sys.stderr)
        return 2
    collect = mutmut_main.collect_or_load_stats

    def collect_then_widen(*args: object, **kwargs: object) -> None:
        collect(*args, **kwargs)
        known = state().duration_by_test  # every test the stats run saw, by node id
        by_module = {dotted(path): {node for node in known if node.partition("::")[0] in files}
                     for path, files in subsets.items()}
        state().tests_by_mangled_function_name = _ModuleTests(state().tests_by_mangled_function_name, by_module,
                                                              only)

    mutmut_main.collect_or_load_stats = collect_then_widen
    sys.argv = ["mutmut", *argv]
    try:
        mutmut_main.cli()
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else 1
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] in (["--as-mutmut"], ["--as-mutmut-only"]):  # the child process main() starts below
        return run_mutmut(argv[1:], only=argv[0] == "--as-mutmut-only")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help="module names (dglob, image/elf, ...) or mutant names; "
                                                   "default: all core modules")
    parser.add_argument("-j", "--jobs", type=int, default=1, help="mutants tested at once (default 1)")
    parser.add_argument("--report", action="store_true", help="print the last run's table without running")
    parser.add_argument("--fresh", action="store_true", help="forget earlier results (after changing tests)")
    parser.add_argument("--module-tests-only", action="store_true",
                        help="run each mutant against its module's tests ([tool.tracebridge.mutation-tests]) only, "
                             "not also every other test that reaches the function: for modules nearly every test "
                             "calls (demangle, elf)")
    args = parser.parse_args(argv)
    paths = core_modules()
    # A mutant's name (``mutmut show`` spells them) runs that mutant alone, and reports its module.
    mutants = [m for m in args.modules if "__mutmut_" in m]
    modules = [m for m in args.modules if m not in mutants] + [m.partition(".x")[0].replace(".", "/")
                                                                for m in mutants]
    if modules:
        chosen = [p for p in paths if any(p.removesuffix(".py").endswith(m.removesuffix(".py")) for m in modules)]
        unknown = [m for m in modules if not any(p.removesuffix(".py").endswith(m.removesuffix(".py"))
                                                 for p in paths)]
        if unknown:
            print(f"mutation.py: not a core module: {', '.join(unknown)} (see [tool.mutmut] only_mutate)",
                  file=sys.stderr)
            return 2
        paths = chosen
    if not args.report:
        if args.fresh:
            subprocess.run(["rm", "-rf", str(ROOT / "mutants")], check=True)
        # mutmut imports the copy in mutants/: a PYTHONPATH pointing at the sources would test those instead.
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        child = "--as-mutmut-only" if args.module_tests_only else "--as-mutmut"
        command = [sys.executable, __file__, child, "run", "--max-children", str(args.jobs),
                   *(mutants or [dotted(p) + ".*" for p in paths])]
        run = subprocess.run(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        log = ROOT / "mutants" / "run.log"
        log.parent.mkdir(exist_ok=True)
        log.write_bytes(run.stdout)
        if run.returncode != 0 and all(code is None for p in paths for code in results(p).values()):
            # mutmut exits 1 both when mutants survive and when the unmutated tests fail ("failed to collect stats").
            tail = run.stdout.decode("utf-8", "replace").replace("\r", "\n").splitlines()[-15:]
            print("\n".join(tail), file=sys.stderr)
            print(f"mutation.py: {' '.join(command)} failed with status {run.returncode} (output: {log})",
                  file=sys.stderr)
            return 2
    return report(paths)


if __name__ == "__main__":
    sys.exit(main())
