"""DTrace frame texts to frames: offsets, hex frames, owners and completion of cut names.

The texts are what ``dt_print_stack`` prints (``mod`func+0xoff``, ``mod`0xADDR``,
a bare ``0xADDR``) and what DTrace leaves of names it cuts at 191 characters.
"""

from __future__ import annotations

from fixture_paths import MODULES
from tracebridge.image.elf import open_module
from tracebridge.profile.resolve import AddressSpace
from tracebridge.readers.dtrace_frames import CUT_LENGTHS, FrameNamer, split_offset

BASE = 0xFFFFFFFF82000000


def test_split_offset():
    assert split_offset("rem_intr+0x1f") == ("rem_intr", 0x1F)
    assert split_offset("f+0x1+0x2") == ("f+0x1", 2)
    assert split_offset("f+0x10") == ("f", 0x10)
    assert split_offset("f+0xffffffffffffffff") == ("f", (1 << 64) - 1)
    # Not an offset: nothing before the plus, no digits after 0x, not hex, wider than 64 bits.
    for text in ("+0x10", "f+0x", "f+0xzz", "f+0xg1", "f+0x1" + "0" * 16, "f+0x" + "f" * 17, "f+10"):
        assert split_offset(text) == (text, None)


def test_texts_that_are_no_address_stay_text():
    namer = FrameNamer()
    assert namer.frame("0X1F").name == "0x1f"  # an address, however spelt
    for text, module, name in [("0x", None, "0x"), ("kernel`0x", "kernel", "0x"), ("+0x10", None, "+0x10"),
                               ("kernel`", "kernel", "kernel`")]:
        frame = namer.frame(text)
        assert (frame.module, frame.name, frame.offset) == (module, name, None)


def test_printed_module_wins_over_the_owner():
    namer = FrameNamer(owners={"rem_intr": "if_rem.ko"})
    assert namer.frame("rem_intr").module == "if_rem.ko"           # a probefunc key: no module printed
    assert namer.frame("other.ko`rem_intr+0x4").module == "other.ko"


def cut_names(count: int) -> tuple[str, list[str]]:
    cut = "c_function_" + "x" * (CUT_LENGTHS[0] - 11)
    return cut, [cut + f"_{i}" for i in range(count)]


def test_cut_name_completed_only_when_one_name_fits():
    cut, names = cut_names(1)
    assert len(cut) == 191
    assert FrameNamer(owners=dict.fromkeys(names, "m.ko")).frame(f"m.ko`{cut}+0x8").symbol == names[0]
    cut, names = cut_names(2)
    assert FrameNamer(owners=dict.fromkeys(names, "m.ko")).frame(f"m.ko`{cut}+0x8").symbol == cut
    # A function named exactly the cut text is as likely as the longer one: no guess either.
    cut, names = cut_names(1)
    assert FrameNamer(owners=dict.fromkeys([cut, *names], "m.ko")).frame(f"m.ko`{cut}+0x8").symbol == cut


def test_whole_rust_name_of_the_cut_length_is_not_completed():
    """A legacy symbol that happens to be 191 characters long demangles: it was not cut."""
    body = "3rem" + "58" + "a" * 58 + "60" + "b" * 60
    n = 191 - len("_ZN") - len(body) - len("17h0123456789abcdefE") - 2
    symbol = f"_ZN{body}{n}{'c' * n}17h0123456789abcdefE"
    assert len(symbol) == 191
    namer = FrameNamer(owners={symbol: "m.ko", symbol + ".llvm.5": "m.ko"})
    frame = namer.frame(f"m.ko`{symbol}+0x4")
    assert frame.symbol == symbol and frame.name.startswith("rem::")


def test_hex_frame_between_functions_stays_in_its_module():
    """A PC in the padding between two functions: module-relative, not a raw address."""
    image = open_module(MODULES / "rem_legacy_fp.ko")
    functions = sorted(image.functions, key=lambda f: f.offset)
    gap = next(a.offset + a.size for a, b in zip(functions, functions[1:]) if a.offset + a.size < b.offset)
    space = AddressSpace()
    space.add(image, BASE, "rem_legacy_fp.ko")
    frame = FrameNamer(space).frame(f"0x{BASE + gap:x}")
    assert (frame.module, frame.name) == ("rem_legacy_fp.ko", f"rem_legacy_fp.ko+0x{gap:x}")
    outside = FrameNamer(space).frame(f"kernel`0x{BASE - 0x10:x}")
    assert (outside.module, outside.name) == ("kernel", f"kernel`0x{BASE - 0x10:x}")
