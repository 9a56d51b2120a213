"""DTrace frame texts to frames: offsets, hex frames, owners and completion of cut names.

The texts are what ``dt_print_stack`` prints (``mod`func+0xoff``, ``mod`0xADDR``,
a bare ``0xADDR``) and what DTrace leaves of names it cuts at 191 characters.
"""

from __future__ import annotations

from pathlib import Path

from fixture_paths import EDGE, MODULES
from tracebridge.image.elf import open_module
from tracebridge.probes.probemap import ProbeMap
from tracebridge.profile.resolve import AddressSpace
from tracebridge.profile.consistency import Evidence
from tracebridge.profile.model import UNKNOWN, Frame
from tracebridge.readers.dtrace_frames import CUT_LENGTHS, FrameNamer, split_offset, strip_offsets

BASE = 0xFFFFFFFF82000000
EXAMPLES = Path(__file__).parents[2] / "examples"


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


def test_cut_name_shared_by_two_of_a_modules_functions_is_not_completed():
    """The two names cut alike sort after the 78 functions of rem_legacy_fp.ko (``_ZN...``, ``rem_...``
    come first): both must be found, however far into the sorted names they start."""
    cut, names = cut_names(2)
    owners = dict.fromkeys([f.name for f in open_module(MODULES / "rem_legacy_fp.ko").functions], "m.ko")
    owners.update(dict.fromkeys(names, "m.ko"))
    assert FrameNamer(owners=owners).frame(f"m.ko`{cut}+0x8").symbol == cut
    owners.pop(names[1])
    assert FrameNamer(owners=owners).frame(f"m.ko`{cut}+0x8").symbol == names[0]


def test_cut_probefunc_completed_from_the_probe_map_alone():
    """``@[probefunc]`` keys hold at most 191 characters.  With only the probe map gen-probes wrote for
    the capture in examples/run (no module given), its two long names (310 and 384 characters) are
    completed from the map's mangled names."""
    probe_map = ProbeMap.load(EXAMPLES / "run" / "probes.json")
    long = [entry.mangled for entry in probe_map if len(entry.mangled) > CUT_LENGTHS[0]]
    assert len(long) == 2
    namer = FrameNamer(probe_map=probe_map)
    assert [namer.frame(name[:CUT_LENGTHS[0]]).symbol for name in long] == long


def test_offsets_stripped_from_a_captures_frames():
    """The frame lines of examples/if_rem.stack.txt (``dtrace -x stackframes`` output) without their
    ``+0xOFF``: named frames lose it, hex frames have none to lose."""
    lines = {line.strip() for line in (EXAMPLES / "if_rem.stack.txt").read_text().splitlines()}
    frames = [line for line in lines if line and not line.isdigit()]
    stripped = strip_offsets(frames)
    assert stripped["kernel`ithread_loop+0x1a6"] == "kernel`ithread_loop"
    assert stripped["kernel`0xffffffff8104e10e"] == "kernel`0xffffffff8104e10e"
    assert stripped["0xffffffff82a1dd1c"] == "0xffffffff82a1dd1c"
    assert all("+0x" not in text and frame.startswith(text) for frame, text in stripped.items())


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
    """A PC in the padding between two functions: named by its module, as DTrace would (`` module`0xADDR ``)."""
    image = open_module(MODULES / "rem_legacy_fp.ko")
    functions = sorted(image.functions, key=lambda f: f.offset)
    gap = next(a.offset + a.size for a, b in zip(functions, functions[1:]) if a.offset + a.size < b.offset)
    space = AddressSpace()
    space.add(image, BASE, "rem_legacy_fp.ko")
    frame = FrameNamer(space).frame(f"0x{BASE + gap:x}")
    assert (frame.module, frame.name, frame.offset) == ("rem_legacy_fp.ko", f"rem_legacy_fp.ko`0x{BASE + gap:x}", gap)
    outside = FrameNamer(space).frame(f"kernel`0x{BASE - 0x10:x}")
    assert (outside.module, outside.name) == ("kernel", f"kernel`0x{BASE - 0x10:x}")


def test_hex_frame_outside_every_module_keeps_its_text():
    frame = FrameNamer().frame("kernel`0xffffffff80b0c0de")
    assert frame == Frame("kernel", "0xffffffff80b0c0de", "kernel`0xffffffff80b0c0de", None, UNKNOWN, None)


def test_frames_are_observed_by_role():
    """Each kind of frame text feeds its own check of whether the capture fits the module:
    ``mod`func+0xOFF`` (is there such a function, is the offset inside it), ``mod`0xADDR`` (inside
    the module where it is placed), hex PCs (inside a function; a leaf on an instruction start, a
    caller after a call), and bare hex no module holds (strays).  Texts seen again count once."""
    name = "rem_legacy_fp.ko"
    image = open_module(MODULES / name)
    first, second = sorted((f for f in image.functions if f.size > 8), key=lambda f: f.offset)[:2]
    assert first.offset == 0 and image.code(second)[:1] == b"\x55"  # push %rbp: offset 1 starts the next
    space = AddressSpace()
    space.add(image, BASE, name)
    evidence = Evidence()
    evidence.watch(name, image)
    namer = FrameNamer(space, evidence=evidence)
    leaves = [f"{name}`{first.name}+0x0", f"{name}`nosuch+0x4", f"0x{BASE:x}", f"{name}`0x{BASE + second.offset + 1:x}",
              "0x10", "kernel`0x20", "kernel`f+0x4", "+0x10", f"{name}`0x{BASE - 8:x}",
              # Names, not addresses: hex with an offset, a name holding a tick, a module with no name.
              "0x20+0x10", f"{name}`a`b+0x4", f"{name}`"]
    # A caller at a function's first byte with nothing before it; an offset past the function's end.
    callers = [f"0x{BASE:x}", f"{name}`{second.name}+0x{second.size + 1:x}"]
    for _ in range(2):
        namer.observe(leaves, callers)
    # Seen before, then new: a function named without an offset (offset 0).
    namer.observe([leaves[0], f"{name}`{second.name}"], [])
    module = evidence.modules[name]
    checks = {k: (getattr(module, k).seen, getattr(module, k).off)
              for k in ("in_function", "on_start", "after_call", "named", "module_hex")}
    assert checks == {"in_function": (2, 0), "on_start": (2, 0), "after_call": (1, 1), "named": (5, 3),
                      "module_hex": (2, 1)}
    assert module.missing == ["nosuch", "a`b"]
    assert evidence._stray == {0x10}  # "kernel`0x20" named its module: no stray


def test_nothing_is_observed_without_a_module_to_check():
    evidence = Evidence()
    FrameNamer(evidence=evidence).observe(["0x10", "m.ko`f+0x4"], ["0x20"])
    assert evidence.modules == {} and evidence._stray == set()
    FrameNamer().observe(["0x10", "m.ko`f+0x4"], ["0x20"])  # no evidence wanted at all


def test_named_frame_of_a_zero_size_function():
    """An assembly symbol of size 0 (``zero_fn`` in edges_amd64.ko): DTrace names PCs at its start
    ``zero_fn+0x0`` (or without offset), which fits; one byte further does not."""
    name = "edges_amd64.ko"
    image = open_module(EDGE / name)
    space = AddressSpace()
    space.add(image, BASE, name)
    evidence = Evidence()
    evidence.watch(name, image)
    FrameNamer(space, evidence=evidence).observe([f"{name}`zero_fn", f"{name}`zero_fn+0x0"], [])
    named = evidence.modules[name].named
    assert (named.seen, named.off) == (1, 0)  # both texts are the same frame: zero_fn at offset 0
    FrameNamer(space, evidence=evidence).observe([f"{name}`zero_fn+0x1"], [])
    assert (named.seen, named.off) == (2, 1)


def test_short_names_are_not_completed():
    """Only names of a length DTrace cuts at are completed: ``rem_intr`` is a function of its own."""
    namer = FrameNamer(owners={"rem_intr_handler": "m.ko"})
    assert namer.frame("m.ko`rem_intr+0x4").symbol == "rem_intr"


def legacy(path: str) -> str:
    return "_ZN" + "".join(f"{len(part)}{part}" for part in path.split("::")) + "17h0123456789abcdefE"


def test_every_way_of_naming_keeps_module_offset_and_scheme():
    """Each path from frame text to frame: the probe map's field as written and as a glob, a
    half-demangled legacy name, a demangled name with its hash, a cut name, text that is no name."""
    from tracebridge.probes.probemap import ProbeMap, ProbeMapEntry

    new, refill = legacy("rem::em::Adapter$LT$T$GT$::new"), legacy("rem::em::Rx$LT$T$GT$::refill")
    entries = [ProbeMapEntry(function=new.replace("$", "?"), mangled=new, demangled="", offset=0, size=8,
                             entry=True, ret=True),
               ProbeMapEntry(function=refill.replace("$", "?")[:30] + "*", mangled=refill, demangled="",
                             offset=16, size=8, entry=True, ret=True),
               ProbeMapEntry(function="foo?bar", mangled="foo$bar", demangled="", offset=32, size=8,
                             entry=True, ret=True)]
    probe_map = ProbeMap(module="if_rem.ko", modname="if_rem", machine="amd64", template="count", base=None,
                         size=64, scripts=["-"], entries=entries)
    cut, names = cut_names(1)
    namer = FrameNamer(probe_map=probe_map, owners={names[0]: "m.ko"})
    rust = "rust-legacy"
    cases = {
        f"if_rem.ko`{new.replace('$', '?')}+0x8": Frame("if_rem.ko", new, "rem::em::Adapter<T>::new", 8, rust, "rem"),
        f"if_rem.ko`{refill.replace('$', '?')}+0x4":
            Frame("if_rem.ko", refill, "rem::em::Rx<T>::refill", 4, rust, "rem"),
        "if_rem.ko`rem::em::Adapter$LT$T$GT$::new::h0123456789abcdef+0x10":
            Frame("if_rem.ko", new, "rem::em::Adapter<T>::new", 0x10, rust, "rem"),
        "m.ko`<rem::Dev as core::ops::Drop>::drop::h0123456789abcdef+0x3":
            Frame("m.ko", "<rem::Dev as core::ops::Drop>::drop::h0123456789abcdef",
                  "<rem::Dev as core::ops::Drop>::drop", 3, "rust", "rem"),
        f"m.ko`{cut}+0x8": Frame("m.ko", names[0], names[0], 8, "c", None),
        # A caller the script never traced whose name fits a field's glob, and a glob matching no field.
        "if_rem.ko`fooXbar+0x1": Frame("if_rem.ko", "fooXbar", "fooXbar", 1, "c", None),
        "if_rem.ko`zz?zz+0x2": Frame("if_rem.ko", "zz?zz", "zz?zz", 2, "c", None),
        "kernel`": Frame("kernel", "kernel`", "kernel`", None, "unknown", None),
        "0x20+0x10": Frame(None, "0x20", "0x20", 0x10, "c", None),  # hex with an offset is a name
        "m.ko`a`b+0x4": Frame("m.ko", "a`b", "a`b", 4, "c", None),  # the module ends at the first tick
    }
    assert {text: namer.frame(text) for text in cases} == cases


def test_owner_is_given_only_when_one_module_defines_the_name():
    namer = FrameNamer(owners={"shared": None, "rem_intr": "if_rem.ko"})
    assert namer.frame("shared+0x4") == Frame(None, "shared", "shared", 4, "c", None)
    assert namer.frame("rem_intr+0x4") == Frame("if_rem.ko", "rem_intr", "rem_intr", 4, "c", None)
