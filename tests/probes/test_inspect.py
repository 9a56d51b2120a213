"""inspect: the report, its fixes, its JSON, and bad input."""

from __future__ import annotations

import json

import pytest

from fixture_paths import MODULES
from tracebridge.cli import main


def run(capsys, *args) -> tuple[int, str, str]:
    status = main(["inspect", *map(str, args)])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_frame_pointer_less_module_names_the_fix(capsys):
    status, out, _ = run(capsys, MODULES / "rem_legacy_nofp.ko")
    assert status == 0
    assert "no-frame-pointer" in out and "-C force-frame-pointers=yes" in out
    assert "         rem_unload, dtrace_safe_y, rem_load and 60 more\n" in out
    assert "Verdict: only 14 of 78 functions are probeable with FBT: the module was built without frame pointers" \
        in out


def test_json_report(capsys):
    status, out, _ = run(capsys, MODULES / "rem_legacy_fp.ko", "--format", "json")
    report = json.loads(out)
    assert status == 0
    # One alias's return site belongs to the alias listed after it (fbt.py: only that probe fires).
    assert report["functions"] == 78 and report["probeable"] == 77 and report["ret"] == 72
    assert report["reasons"] == {"excluded-name": 1}
    assert report["reason_examples"] == {"excluded-name": ["dtrace_helper_x"]}
    assert report["long_names"] == 2 and report["unnamed"] == 0
    assert {f["code"] for f in report["findings"]} == {"merge-text", "excluded-names"}


def test_merged_text_needs_no_linker_fix(capsys):
    _, out, _ = run(capsys, MODULES / "rem_legacy_fp_merged.ko", "-f", "json")
    assert "merge-text" not in {f["code"] for f in json.loads(out)["findings"]}


def test_nothing_probeable_still_exits_zero(capsys, tmp_path):
    path = tmp_path / "m.ko"
    path.write_bytes((MODULES / "rem_legacy_fp.ko").read_bytes().replace(b"\0kernel\0", b"\0dtrace\0"))
    status, out, _ = run(capsys, path)
    assert status == 0
    assert "nothing in this module is probeable" in out and "avoid a MODULE_DEPEND on dtrace" in out


@pytest.mark.parametrize("command", ["inspect", "gen-probes"])
@pytest.mark.parametrize("make, words", [
    (lambda d: d / "t.ko" if (d / "t.ko").write_text("just text\n") else None, ["not an ELF"]),
    (lambda d: MODULES / "rem_stripped.ko", ["symbol table"]),
    (lambda d: d, ["directory"]),
])
def test_bad_input_is_one_line(capsys, tmp_path, command, make, words):
    status = main([command, str(make(tmp_path))])
    err = capsys.readouterr().err
    assert status == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tracebridge: ") and "Traceback" not in err
    assert all(w in lines[0] for w in words)


def test_symbols_has_fbt_columns(capsys):
    assert main(["symbols", str(MODULES / "rem_arm64.ko"), "-f", "json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert (rows["rem_attach"]["fbt_entry"], rows["rem_attach"]["fbt_returns"], rows["rem_attach"]["fbt_reason"]) \
        == (4, 2, None)
    assert (rows["dtrace_helper_x"]["fbt_entry"], rows["dtrace_helper_x"]["fbt_reason"]) == (None, "excluded-name")


def test_a_program_is_not_listed_as_a_module(tmp_path, capsys):
    """A PIE program (ET_DYN, no set_modmetadata_set) is refused in one line, not inspected as `ls.ko`."""
    import shutil

    program = shutil.which("ls")
    assert main(["inspect", program]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (f"tracebridge: {program}: is not a kernel module: an ET_DYN file without module metadata "
                   "(no set_modmetadata_set section), so a program or a shared library; inspect takes a .ko "
                   "(ET_REL on amd64) or the kernel\n")
