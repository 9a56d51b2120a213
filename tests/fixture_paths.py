"""Where the committed modules and the independent tools' views of them live.

A plain module, not conftest.py: several test folders have a conftest of
their own, and ``from conftest import`` would pick whichever was loaded first.
"""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"
MODULES = FIXTURES / "modules"
EXPECTED = FIXTURES / "expected"
#: Small modules for rare shapes (IFUNC, .dynsym only, linked at 4 MB, arm64/riscv rules), with
#: their readelf -s views; kept out of MODULES, whose every file is compared with binutils' views.
EDGE = FIXTURES / "edge"

#: Every committed module that has a symbol table and the full set of views (readelf, nm, rustfilt...).
MODULE_NAMES = sorted(p.stem for p in MODULES.glob("rem_*.ko") if p.stem != "rem_stripped")
#: The modules built with DWARF (``.ko`` + ``.ko.debug`` + ``.ko.full``), with addr2line views.
DWARF_MODULE_NAMES = sorted(p.stem for p in MODULES.glob("inl_*.ko"))
#: rustc-compiled arm64 and riscv modules with DWARF (``.ko`` + ``.ko.debug`` + ``.ko.full``), with
#: llvm-objdump listings and addr2line views (binutils here disassembles x86 only).
CROSS = FIXTURES / "cross"
CROSS_MODULE_NAMES = sorted(p.stem for p in CROSS.glob("xinl_*.ko"))
