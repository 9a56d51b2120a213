"""``pmcstat-root``: libpmcstat, emulated from its source, names every Rust function of the image right.

The expectations come from the original modules through independent tools
only: GNU readelf's sections and symbols (the kernel layout recomputed from
them), GNU objdump's disassembly (instruction starts and return addresses)
and rustfilt's names (tests/fixtures/expected).  The images are checked with
readelf and objdump run on them here.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

import readelf_text
from fixture_paths import DWARF_MODULE_NAMES, EXPECTED, MODULE_NAMES, MODULES
from libpmcstat_emulation import KernelProcess, kernel_directory
from objdump_oracle import disassembly
from tracebridge.cli import main
from tracebridge.image.elf import open_module
from tracebridge.probes.pmcroot import MARKER

BASE = 0xFFFFFFFF82A00000
_LEGACY_HASH = re.compile(r"17h([0-9a-f]{16})E")
_CALL = re.compile(r"^(call|bl|blr)\b")
#: readelf listings made during the run (removed at exit).
_LISTINGS = tempfile.TemporaryDirectory(prefix="pmcstat-root-test-")
_LLVM_LINE = re.compile(r"^(\s*[0-9a-f]+): ((?:[0-9a-f]{2} ){3}[0-9a-f]{2})\s*\t", re.M)


@dataclass
class Expected:
    name: str
    mangled: str
    start: int
    end: int
    section: str
    value: int


def symbol_listing(name: str) -> Path:
    """readelf -s of the original: the saved one, or (the opt-level 3 modules have none saved) made now."""
    saved = EXPECTED / f"{name}.readelf-s.txt"
    if not saved.exists():
        if shutil.which("readelf") is None:
            pytest.skip("needs binutils' readelf")
        run = subprocess.run(["readelf", "-sW", str(MODULES / f"{name}.ko")], capture_output=True, text=True,
                             check=True)
        return _write(Path(_LISTINGS.name) / f"{name}.readelf-s.txt", run.stdout)
    return saved


def expected_functions(name: str) -> tuple[list[Expected], int, str]:
    """One function per start (aliases: the global, then larger, then first name), from readelf and rustfilt.

    Without a rustfilt listing (the opt-level 3 modules) GNU c++filt's Rust demangler gives the names,
    its plain form (``::h<hash>``, ``[crate-hash]``) cut to rustc-demangle's alternate form.
    """
    secs = readelf_text.sections(EXPECTED / f"{name}.readelf-S.txt")
    by_index = {s.index: s for s in secs}
    machine = {"rem_arm64": "arm64", "rem_i386": "i386"}.get(name, "amd64")
    relocatable = name not in ("rem_arm64", "rem_i386")
    if relocatable:
        placed, size = readelf_text.kernel_layout(secs, machine)
        low = 0
    else:
        alloc = [s for s in secs if "A" in s.flags and s.size]
        low = min(s.addr for s in alloc) // 4096 * 4096
        size = -(-max(s.addr + s.size for s in alloc) // 4096) * 4096 - low
        placed = {s.index: s.addr - low for s in alloc}
    rustfilt = EXPECTED / f"{name}.rustfilt.txt"
    listed = readelf_text.symbols(symbol_listing(name))
    if rustfilt.exists():
        demangled = dict(line.split("\t", 1) for line in rustfilt.read_text().splitlines())
    else:
        demangled = cxxfilt_names([sym.name for sym in listed])
    starts: dict[int, list] = {}
    for sym in listed:
        if sym.type != "FUNC" or not sym.ndx.isdigit() or int(sym.ndx) not in placed:
            continue
        offset = placed[int(sym.ndx)] + sym.value if relocatable else sym.value - low
        starts.setdefault(offset, []).append(sym)
    ordered = sorted(starts)
    out = []
    for position, start in enumerate(ordered):
        sym = min(starts[start], key=lambda s: (s.bind != "GLOBAL", -s.size, s.name))
        following = ordered[position + 1] if position + 1 < len(ordered) else size
        end = following if sym.size == 0 else min(start + sym.size, following)
        out.append(Expected(demangled.get(sym.name, sym.name), sym.name, start, end,
                            by_index[int(sym.ndx)].name, sym.value))
    counts = Counter(e.name for e in out)
    for e in out:
        if counts[e.name] > 1:
            e.name += "#" + _LEGACY_HASH.search(e.mangled).group(1)[:8]
    return out, size, machine


def cxxfilt_names(symbols: list[str]) -> dict[str, str]:
    if shutil.which("c++filt") is None:
        pytest.skip("needs GNU c++filt (binutils) to demangle without a rustfilt listing")
    plain = subprocess.run(["c++filt", "-s", "rust"], input="\n".join(symbols) + "\n", capture_output=True,
                           text=True, check=True).stdout.splitlines()
    return {symbol: re.sub(r"::h[0-9a-f]{16}$", "", re.sub(r"\[[0-9a-f]+\]", "", name))
            for symbol, name in zip(symbols, plain)}


def fake_system(top: Path) -> Path:
    """A system tree: a kernel directory with a kernel and a module of its own, /boot/modules, /bin/sh."""
    system = top / "system"
    (system / "boot" / "kernel").mkdir(parents=True)
    (system / "boot" / "modules").mkdir()
    (system / "bin").mkdir()
    (system / "boot" / "kernel" / "kernel").write_bytes(b"not an ELF kernel, only its path matters here")
    shutil.copy(MODULES / "rem_i386.ko", system / "boot" / "kernel" / "zfs.ko")
    (system / "bin" / "sh").write_bytes(b"sh")
    return system


def make_root(tmp_path: Path, *modules: str, extra: tuple[str, ...] = ()) -> Path:
    system = tmp_path / "system" if (tmp_path / "system").exists() else fake_system(tmp_path)
    root = tmp_path / "root"
    args = ["pmcstat-root", *(str(MODULES / f"{m}.ko") for m in modules), "-o", str(root), "--system", str(system)]
    assert main([*args, *extra]) == 0
    return root


def instruction_pcs(name: str, machine: str, fn: Expected) -> tuple[list[int], list[int]]:
    """Layout offsets of a function's instruction starts and of the return addresses inside it (objdump)."""
    insns = disassembly(EXPECTED / f"{name}.objdump.txt", machine)[fn.section]
    first = fn.value  # objdump's address of the function (section offset, or virtual address)
    starts, returns = [], []
    for insn in insns:
        if first <= insn.address < first + (fn.end - fn.start):
            offset = fn.start + insn.address - first
            starts.append(offset)
            if _CALL.match(insn.text):
                returns.append(offset + len(insn.raw))
    return starts, returns


@pytest.mark.parametrize("name", MODULE_NAMES + DWARF_MODULE_NAMES)
def test_every_pc_of_every_function_names_it(tmp_path, name):
    root = make_root(tmp_path, name)
    functions, size, machine = expected_functions(name)
    kernel = KernelProcess(str(root), kernel_directory(str(root), "/boot/kernel/kernel"))
    assert kernel.map_in("kernel", 0xFFFFFFFF80200000) is None  # not an ELF file: indeterminable, not linked
    image = kernel.map_in(f"{name}.ko", BASE)
    # A neighbour loaded right after: none of the module's PCs may be given to it, nor its PCs to the module.
    neighbour = kernel.map_in("zfs.ko", BASE + size)
    assert image is not None and neighbour is not None
    assert os.path.realpath(image.path) == str(root / "boot" / "modules" / f"{name}.ko")
    assert (image.start, image.end, image.vaddr) == (0, size, 0)
    checked = at_end = 0
    for fn in functions:
        starts, returns = instruction_pcs(name, machine, fn)
        assert starts and starts[0] == fn.start, fn.name
        inside = [pc for pc in returns if pc < fn.end]
        at_end += len(returns) - len(inside)
        for offset in [*starts, *inside, fn.end - 1]:
            found = kernel.resolve(BASE + offset)
            assert found is not None, (fn.name, hex(offset))
            owner, symbol = found
            assert owner is image and symbol is not None and symbol.name == fn.name, (fn.name, hex(offset))
            checked += 1
    assert checked > 3 * len(functions)
    # The module's last byte is its own; the neighbour's text (from its pi_start) is the neighbour's.
    assert kernel.resolve(BASE + size - 1)[0] is image
    assert kernel.resolve(BASE + size + neighbour.start)[0] is neighbour
    # A call as a function's last instruction returns to the next function: pmcstat does not step back.
    assert at_end < len(functions)


def test_mangled_keeps_the_symbols(tmp_path):
    root = make_root(tmp_path, "rem_legacy_fp", extra=("--mangled",))
    functions, _, _ = expected_functions("rem_legacy_fp")
    kernel = KernelProcess(str(root), kernel_directory(str(root), "/boot/kernel/kernel"))
    kernel.map_in("rem_legacy_fp.ko", BASE)
    names = [kernel.resolve(BASE + fn.start)[1].name for fn in functions]
    assert names == [fn.mangled for fn in functions]
    assert any(n.startswith("_ZN") for n in names) and any(n.startswith("_R") for n in names)


def test_the_original_module_is_what_pmcstat_gets_wrong(tmp_path):
    """The same emulation on the unmodified module: every Rust function at 0, most PCs outside the module."""
    modules = tmp_path / "boot" / "modules"
    modules.mkdir(parents=True)
    shutil.copy(MODULES / "rem_legacy_fp.ko", modules)
    (tmp_path / "boot" / "kernel").mkdir()
    kernel = KernelProcess(str(tmp_path), "/boot/kernel")
    image = kernel.map_in("rem_legacy_fp.ko", BASE)
    functions, size, _ = expected_functions("rem_legacy_fp")
    assert image.end - image.start < size // 4
    wrong = sum(1 for fn in functions
                if (r := kernel.resolve(BASE + fn.start)) is None or r[1] is None or r[1].name != fn.mangled)
    assert wrong > len(functions) * 3 // 4


def test_lookup_order_and_paths(tmp_path):
    """The paths libpmcstat opens for basename, full-path, kernel and -k map-ins all reach the right file."""
    system = fake_system(tmp_path)
    # The system's kernel directory has a file of the same name: the root's own must still win.
    shutil.copy(MODULES / "rem_v0_fp.ko", system / "boot" / "kernel")
    root = make_root(tmp_path, "rem_v0_fp", extra=("--loaded-from", "/home/me/target/rem_v0_fp.ko"))
    image_file = str(root / "boot" / "modules" / "rem_v0_fp.ko")
    kernel = KernelProcess(str(root), kernel_directory(str(root), "/boot/kernel/kernel"))
    assert kernel.kernel_dir == "/boot/kernel"
    for logged in ("rem_v0_fp.ko", "/boot/modules/rem_v0_fp.ko", "/boot/kernel/rem_v0_fp.ko",
                   "/home/me/target/rem_v0_fp.ko", str(MODULES / "rem_v0_fp.ko")):
        kernel.opened.clear()
        image = kernel.map_in(logged, BASE)
        assert kernel.opened == [f"{root}/boot/kernel/{logged}"], logged  # found at the first candidate
        assert os.path.realpath(image.path) == image_file
    # Anything else resolves to the system: the kernel (basename and full path), its modules, userland.
    for logged, real in (("kernel", "boot/kernel/kernel"), ("/boot/kernel/kernel", "boot/kernel/kernel"),
                         ("zfs.ko", "boot/kernel/zfs.ko"), ("/boot/kernel/zfs.ko", "boot/kernel/zfs.ko")):
        assert os.path.realpath(f"{root}/boot/kernel/{logged}") == str(system / real)
    assert os.path.realpath(f"{root}/bin/sh") == str(system / "bin" / "sh")
    # A module not in the root and not in the kernel directory: the second candidate, /boot/modules.
    (system / "boot" / "modules" / "other.ko").write_bytes(b"x")
    shutil.rmtree(root)
    root = make_root(tmp_path, "rem_v0_fp")
    kernel = KernelProcess(str(root), "/boot/kernel")
    assert kernel.map_in("other.ko", BASE) is None
    assert kernel.opened == [f"{root}/boot/kernel/other.ko", f"{root}/boot/modules/other.ko"]
    assert os.path.realpath(kernel.opened[1]) == str(system / "boot" / "modules" / "other.ko")
    # pmcstat -k ROOT/boot/kernel without -r (what pmcannotate -k passes on) finds the image too.
    plain = KernelProcess("", str(root / "boot" / "kernel"))
    assert os.path.realpath(plain.map_in("rem_v0_fp.ko", BASE).path) == str(root / "boot" / "modules" / "rem_v0_fp.ko")


@pytest.mark.skipif(shutil.which("readelf") is None or shutil.which("objdump") is None, reason="needs binutils")
@pytest.mark.parametrize("name", MODULE_NAMES + DWARF_MODULE_NAMES)
def test_readelf_and_objdump_see_the_layout(tmp_path, name):
    root = make_root(tmp_path, name)
    path = root / "boot" / "modules" / f"{name}.ko"
    functions, size, machine = expected_functions(name)
    run = subprocess.run(["readelf", "-aW", str(path)], capture_output=True, text=True, check=True)
    assert "Warning" not in run.stderr and "Error" not in run.stderr, run.stderr
    sections = readelf_text.sections(_write(tmp_path / "S.txt", run.stdout))
    executable = [s for s in sections if "X" in s.flags]
    assert [(s.name, s.addr, s.size) for s in executable] == [(".text", 0, size)]
    symbols = [s for s in readelf_text.symbols(_write(tmp_path / "s.txt", run.stdout)) if s.type == "FUNC"]
    assert sorted((s.value, s.value + s.size) for s in symbols) == [(f.start, f.end) for f in functions]
    # tracebridge's own layout agrees with readelf's on every function of the original.
    module = open_module(MODULES / f"{name}.ko")
    assert sorted({f.offset for f in module.functions}) == [f.start for f in functions]

    tool = ["objdump", "-d", "-w"] if machine != "arm64" else ["llvm-objdump", "-d"]
    if shutil.which(tool[0]) is None:
        pytest.skip(f"{tool[0]} cannot disassemble {machine} here")
    listing = subprocess.run([*tool, str(path)], capture_output=True, text=True, check=True).stdout
    if machine == "arm64":  # llvm-objdump: "  550: fd 7b bf a9  \tstp ...", bytes in memory order
        listing = _LLVM_LINE.sub(lambda m: f"{m[1]}:\t{int.from_bytes(bytes.fromhex(m[2]), 'little'):08x} \t",
                                 listing)
    image_insns = disassembly(_write(tmp_path / "d.txt", listing), machine)[".text"]
    at = {insn.address: insn for insn in image_insns}
    original = disassembly(EXPECTED / f"{name}.objdump.txt", machine)
    for fn in functions:
        first = [i for i in original[fn.section] if fn.value <= i.address < fn.value + fn.end - fn.start][:4]
        shown = [at.get(fn.start + i.address - fn.value) for i in first]
        assert all(s is not None for s in shown), fn.name
        assert [s.raw for s in shown] == [i.raw for i in first], fn.name


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_root_refuses_what_it_must_not_replace(tmp_path, capsys):
    module = str(MODULES / "rem_legacy_fp.ko")
    system = fake_system(tmp_path)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    for extra in ((), ("--force",)):
        assert main(["pmcstat-root", module, "-o", str(busy), "--system", str(system), *extra]) == 2
        assert "not" in capsys.readouterr().err
    assert (busy / "notes.txt").read_text() == "mine" and len(os.listdir(busy)) == 1
    link = tmp_path / "link"
    link.symlink_to(busy)
    assert main(["pmcstat-root", module, "-o", str(link), "--system", str(system)]) == 2
    assert "symbolic link" in capsys.readouterr().err
    assert main(["pmcstat-root", str(MODULES / "rem_stripped.ko"), "-o", str(tmp_path / "r"),
                 "--system", str(system)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("tracebridge: ") and not (tmp_path / "r").exists()
    # An earlier root is replaced with --force only, and an empty directory is used as it is.
    root = tmp_path / "root"
    root.mkdir()
    assert main(["pmcstat-root", module, "-o", str(root), "--system", str(system)]) == 0
    assert (root / MARKER).is_file()
    assert main(["pmcstat-root", module, "-o", str(root), "--system", str(system)]) == 2
    capsys.readouterr()
    v0 = str(MODULES / "rem_v0_fp.ko")
    assert main(["pmcstat-root", v0, "-o", str(root), "--system", str(system), "--force"]) == 0
    assert sorted(os.listdir(root / "boot" / "modules")) == ["rem_v0_fp.ko"]
    assert (system / "bin" / "sh").read_bytes() == b"sh"  # replacing never followed a link into the system
    assert [p for p in os.listdir(tmp_path) if p.startswith(".root")] == []


def test_bad_modules_are_one_line_and_leave_no_root(tmp_path, capsys):
    """A .bss claiming a terabyte (valid ELF, no bytes in the file), garbage, and two modules of one name."""
    import struct

    system = fake_system(tmp_path)
    data = bytearray((MODULES / "rem_legacy_fp.ko").read_bytes())
    shoff = struct.unpack_from("<Q", data, 0x28)[0]
    bss = next(s for s in readelf_text.sections(EXPECTED / "rem_legacy_fp.readelf-S.txt") if s.name == ".bss")
    struct.pack_into("<Q", data, shoff + bss.index * 64 + 32, 1 << 40)
    huge = tmp_path / "huge.ko"
    huge.write_bytes(bytes(data))
    garbage = tmp_path / "garbage.ko"
    garbage.write_bytes(b"\x7fELF" + os.urandom(200))
    twin = tmp_path / "twin"
    twin.mkdir()
    shutil.copy(MODULES / "rem_v0_fp.ko", twin / "rem_legacy_fp.ko")
    for modules, words in (([huge], "kernel layout is 0x1000000"), ([garbage], "garbage.ko"),
                           ([MODULES / "rem_legacy_fp.ko", twin / "rem_legacy_fp.ko"], "two modules are named")):
        status = main(["pmcstat-root", *map(str, modules), "-o", str(tmp_path / "root"), "--system", str(system)])
        err = capsys.readouterr().err
        assert status == 2 and err.count("\n") == 1 and err.startswith("tracebridge: ") and words in err, err
        assert not (tmp_path / "root").exists()
        assert [p for p in os.listdir(tmp_path) if p.startswith(".root")] == []


@pytest.mark.skipif(not os.path.isdir("/proc/1"), reason="needs a directory nothing can be created in (Linux /proc)")
def test_an_unwritable_place_is_one_line(capsys):
    assert main(["pmcstat-root", str(MODULES / "rem_v0_fp.ko"), "-o", "/proc/1/pmcroot"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "/proc/1/pmcroot: cannot write here" in err
