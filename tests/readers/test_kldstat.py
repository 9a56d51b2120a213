"""Saved kldstat output in every shape kldstat.c prints it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tracebridge.support.errors import InputError
from tracebridge.readers.kldstat import parse_kldstat, read_kldstat, sniff

# `kldstat -v` on a 64-bit system (14.x and later: a Dependencies block too).
VERBOSE_64 = """\
Id Refs Address                Size Name
 1   64 0xffffffff80200000  1f3c6c0 kernel (/boot/kernel/kernel)
\tContains modules:
\t\t Id Name
\t\t 18 if_lo
\t\t  1 pci/if_em
\tDependencies:
 2    1 0xffffffff8213d000     77e0 if_rem.ko (/boot/modules/if_rem.ko)
\tContains modules:
\t\t Id Name
\t\t495 if_rem
\tDependencies:
\t\t  depends on kernel.1 (1,1) => /boot/kernel/kernel
"""
# Plain `kldstat` on i386 as releases before 12 printed it (%p unpadded, %-8x).
PLAIN_32_OLD = "Id Refs Address    Size     Name\n 1    4 0xc0400000 8d7a2c   kernel\n 2    1 0xc4a1c000 5000     if_rem.ko\n"
# `kldstat -h`: humanised sizes in a 5-wide column.
HUMANISED = ("Id Refs Address             Size Name\n"
             " 1   64 0xffffffff80200000   35M kernel\n"
             " 2    1 0xffffffff8213d000  4.1K if_rem.ko\n"
             " 3    1 0xffffffff82200000   512 tiny.ko\n")


def test_verbose_64_bit():
    k = parse_kldstat(VERBOSE_64.splitlines(True), "k.txt")
    assert [(f.id, f.refs, f.address, f.size, f.name) for f in k.files] == [
        (1, 64, 0xFFFFFFFF80200000, 0x1F3C6C0, "kernel"),
        (2, 1, 0xFFFFFFFF8213D000, 0x77E0, "if_rem.ko"),
    ]
    assert k.files[0].pathname == "/boot/kernel/kernel"
    assert k.files[0].modules == ("if_lo", "pci/if_em")
    assert k.files[1].modules == ("if_rem",)
    assert k.files[1].end == 0xFFFFFFFF8213D000 + 0x77E0


@pytest.mark.parametrize("name", ["if_rem.ko", "if_rem", "/build/obj/if_rem.ko"])
def test_find_by_basename(name):
    k = parse_kldstat(VERBOSE_64.splitlines(True), "k.txt")
    assert k.find(name).address == 0xFFFFFFFF8213D000
    assert k.find("other.ko") is None


def test_plain_32_bit_old_format():
    k = parse_kldstat(PLAIN_32_OLD.splitlines(True), "k.txt")
    assert [(f.address, f.size, f.name, f.pathname) for f in k.files] == [
        (0xC0400000, 0x8D7A2C, "kernel", None), (0xC4A1C000, 0x5000, "if_rem.ko", None)]


def test_humanised_sizes_are_unknown_not_misread_as_hex():
    k = parse_kldstat(HUMANISED.splitlines(True), "k.txt")
    assert [f.size for f in k.files] == [None, None, None]
    assert k.find("tiny").address == 0xFFFFFFFF82200000


def test_sniff():
    assert sniff(["", VERBOSE_64.splitlines()[0]])
    assert not sniff(["callchain 1 0x1 0 2 s"])


@pytest.mark.parametrize("text, line, words", [
    ("", None, "empty"),
    ("hello\n", 1, "header"),
    ("Id Refs Address                Size Name\n 1 garbage\n", 2, "not a kldstat line"),
    ("Id Refs Address                Size Name\n 1   64 0xffffffff80200000  zz kernel\n", 2, "neither"),
    ("Id Refs Address                Size Name\n", None, "no loaded files"),
    ("Id Refs Address                Size Name\n\t\t  1 if_lo\n", 2, "before any file"),
])
def test_bad_input_names_file_and_line(tmp_path, text, line, words):
    path = tmp_path / "k.txt"
    path.write_text(text)
    with pytest.raises(InputError) as caught:
        read_kldstat(path)
    where = f"{path}:{line}:" if line else f"{path}:"
    assert str(caught.value).startswith(where)
    assert words in str(caught.value)


def test_one_form_of_base_for_every_command(capsys):
    """``--base ADDR`` for the one module given, ``--base MODULE=ADDR`` for one of several, in every command."""
    from tracebridge.cli import main

    examples = Path(__file__).parents[2] / "examples"
    stacks, module, other = examples / "if_rem.stack.txt", examples / "if_rem.ko", examples / "if_rem_nofp.ko"
    folded = []
    for base in ("ffffffff82a1c000", "if_rem.ko=ffffffff82a1c000", "if_rem=0xffffffff82a1c000"):
        assert main(["fold", str(stacks), "--module", str(module), "--base", base]) == 0
        folded.append(capsys.readouterr().out)
        assert main(["symmap", str(module), "--base", base]) == 0
        assert "ffffffff82a1c000 ffffffff82a1c037 rem_unload" in capsys.readouterr().out
        assert main(["gen-probes", str(module), "-t", "stack", "--base", base]) == 0
        assert "arg0 >= 0xffffffff82a1c000 && arg0 < 0xffffffff82a1ed90" in capsys.readouterr().out
    assert folded[0] == folded[1] == folded[2] and "rx_frame" in folded[0]
    # Two modules and one plain address: which one is loaded there?
    assert main(["fold", str(stacks), "--module", str(module), "--module", str(other),
                 "--base", "ffffffff82a1c000"]) == 2
    assert capsys.readouterr().err == (
        "tracebridge: --base ffffffff82a1c000: 2 modules are given, so name the one loaded there: "
        "--base MODULE=ADDR (e.g. --base if_rem.ko=ffffffff82a1c000)\n")
    assert main(["fold", str(stacks), "--module", str(module), "--module", str(other),
                 "--base", "if_rem.ko=ffffffff82a1c000"]) == 0
    assert capsys.readouterr().out == folded[0]
