"""Symbol names that try to break out of D comments, strings and descriptions."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from fixture_paths import MODULES
from dcheck import check
from tracebridge.probes import dscript
from tracebridge.cli import main
from tracebridge.probes.probemap import ProbeMap

HOSTILE = {
    "rem_attach": "evil*/ name",
    "rem_detach": 'quote"name',
    "rem_intr": "new\nline",
    "rem_ioctl": "<script>alert(1)</script>",
    "rem_transmit": "/*open$1:x",
    "rem_unload": "back\\slash%s",
}


@pytest.fixture(scope="module")
def hostile_module(tmp_path_factory):
    if shutil.which("objcopy") is None:
        pytest.skip("needs GNU objcopy")
    path = tmp_path_factory.mktemp("hostile") / "evil.ko"
    args = ["objcopy"] + [f"--redefine-sym={old}={new}" for old, new in HOSTILE.items()]
    subprocess.run(args + [str(MODULES / "rem_legacy_fp.ko"), str(path)], check=True)
    return path


@pytest.mark.parametrize("template", dscript.TEMPLATES)
def test_d_output_stays_well_formed(tmp_path, hostile_module, template):
    out, mapping = tmp_path / "p.d", tmp_path / "p.json"
    assert main(["gen-probes", str(hostile_module), "-t", template, "-o", str(out), "--map", str(mapping)]) == 0
    source = out.read_text()
    clauses = check(source)
    for name in HOSTILE.values():
        assert name not in source
    if template != "stack":
        traced = {e.mangled for e in ProbeMap.load(mapping)}
        assert set(HOSTILE.values()) - {"back\\slash%s"} <= traced  # rem_unload has no return site
        descriptions = [d for c in clauses for d in c.descriptions]
        assert "fbt:evil:evil???name:entry" in descriptions
        assert "fbt:evil:??open?1?x:entry" in descriptions


def test_skipped_hostile_names_are_neutralised(tmp_path, hostile_module):
    out = tmp_path / "p.d"
    assert main(["gen-probes", str(hostile_module), "-t", "latency", "-o", str(out)]) == 0
    source = out.read_text()
    check(source)
    assert "back\\134slash\\045s" in source  # listed as skipped (no return probe), escaped


def test_inspect_on_hostile_module(capsys, hostile_module):
    assert main(["inspect", str(hostile_module)]) == 0
    assert "probeable" in capsys.readouterr().out
