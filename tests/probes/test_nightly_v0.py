"""A module built by today's Rust nightly with its default mangling (v0) gets valid, unique probes.

``tests/fixtures/modules/nightly/rem_nightly_fp.ko`` is built by
``tests/fixtures/build.sh`` with ``rustc +nightly`` and no mangling flag
(the toolchain's version is saved beside it); its symbol list is GNU
readelf's.  Globs are checked with Python's fnmatch, not with tracebridge's
own port of libdtrace's matcher.
"""

from __future__ import annotations

import fnmatch
import re

from fixture_paths import MODULES
from dcheck import PSPEC
from tracebridge.cli import main
from tracebridge.probes.probemap import ProbeMap

NIGHTLY = MODULES / "nightly"
MODULE = NIGHTLY / "rem_nightly_fp.ko"


def readelf_functions() -> list[str]:
    rows = [line.split() for line in (NIGHTLY / "rem_nightly_fp.readelf-s.txt").read_text().splitlines()]
    return [row[7] for row in rows if len(row) >= 8 and row[3] == "FUNC"]


def test_built_by_a_nightly_that_mangles_with_v0_by_default():
    version = (NIGHTLY / "rustc-version.txt").read_text()
    date = re.search(r"nightly \(\w+ (\d{4}-\d{2}-\d{2})\)", version).group(1)
    assert date >= "2025-11-21", version
    rust = [n for n in readelf_functions() if n.startswith(("_R", "_ZN"))]
    assert rust and all(n.startswith("_R") for n in rust)
    assert max(map(len, rust)) > 191, "the fixture should have names DTrace cannot hold whole"


def test_every_rust_function_gets_one_valid_description_of_its_own(tmp_path):
    script, mapping = tmp_path / "p.d", tmp_path / "p.json"
    assert main(["gen-probes", str(MODULE), "-o", str(script), "--map", str(mapping)]) == 0
    names = set(readelf_functions())
    long_names = 0
    probe_map = ProbeMap.load(mapping)
    for entry in probe_map:
        if not entry.mangled.startswith("_R") or not entry.entry:
            continue
        field = entry.function
        assert len(field) <= 191 and PSPEC.fullmatch(f"fbt:{probe_map.modname}:{field}:entry"), field
        selected = {n for n in names if fnmatch.fnmatchcase(n, field)}
        assert selected == {entry.mangled}, field
        long_names += len(entry.mangled) > 191
        if len(entry.mangled) > 191:
            assert "*" in field
    assert long_names >= 2
