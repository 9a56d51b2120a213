"""libpmcstat's kernel-image loading and symbol search, emulated from its source for tests without FreeBSD.

Written from freebsd-src HEAD, step by step, with pyelftools as the ELF
reader (libelf's role) and nothing from tracebridge:

* ``main()`` in ``usr.sbin/pmcstat/pmcstat.c``: ``pa_kernel`` is ``-k`` or
  ``kern.bootfile``; ``FSROOT/pa_kernel`` must exist, and when it is a file
  its ``dirname`` becomes the kernel directory (:func:`kernel_directory`).
* ``pmcstat_image_get_elf_params`` (``lib/libpmcstat/libpmcstat_image.c``):
  a kernel file is opened as ``"%s%s/%s"`` (fsroot, kernel dir, logged
  path), else ``"%s/boot/modules/%s"`` (fsroot, path); ET_REL only for
  kernel modules; ``pi_vaddr`` from an executable ``PT_LOAD`` of ET_EXEC
  only; ``pi_start``/``pi_end`` the min/max of ``sh_addr``/``sh_addr +
  sh_size`` over ``SHF_EXECINSTR`` sections (:func:`load_image`).
* ``pmcstat_image_add_symbols``: ``STT_FUNC`` symbols with a section,
  ``ps_start = st_value - pi_vaddr``, ``ps_end = ps_start + st_size``; on a
  second table a start ``pmcstat_symbol_search`` already finds is skipped;
  sorted with ``pmcstat_symbol_compare``, then a zero size is stretched to
  the next symbol's start.
* ``pmcstat_image_link``: the map covers ``pi_start + (start - pi_vaddr)``
  to ``pi_end + (start - pi_vaddr)``, kept in address order.
* ``pmcstat_process_find_map`` (``pmcstat_log.c``/``libpmcstat_process.c``)
  and the PC-to-offset step of ``pmcstat_cgnode_hash_lookup_pc``
  (``pmcpl_callgraph.c``): ``pc - (ppm_lowpc + pi_vaddr - pi_start)``, then
  ``pmcstat_symbol_search``: ``bsearch(3)`` as FreeBSD's libc does it, with
  ``pmcstat_symbol_compare``.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

SHF_EXECINSTR = 0x4
PF_X = 0x1


@dataclass
class Symbol:
    name: str
    start: int
    end: int


@dataclass
class Image:
    #: The path libpmcstat opened (``pi_fullpath``).
    path: str
    vaddr: int
    start: int
    end: int
    symbols: list[Symbol]


def kernel_directory(fsroot: str, kernel: str) -> str:
    """``pa_kernel`` after pmcstat's check: a file's directory, or the directory itself."""
    path = f"{fsroot}{kernel}"
    if not os.path.exists(path):
        raise FileNotFoundError(f'ERROR: Cannot locate kernel "{path}"')
    return kernel if os.path.isdir(path) else os.path.dirname(kernel)


def kernel_candidates(fsroot: str, kernel_dir: str, logged: str) -> list[str]:
    """The two paths ``pmcstat_image_get_elf_params`` tries for a kernel file, in order."""
    return [f"{fsroot}{kernel_dir}/{logged}", f"{fsroot}/boot/modules/{logged}"]


def load_kernel_image(fsroot: str, kernel_dir: str, logged: str, opened: list[str]) -> Image | None:
    """Open a kernel file as libpmcstat does; ``opened`` records every path tried, and None is INDETERMINABLE."""
    for candidate in kernel_candidates(fsroot, kernel_dir, logged):
        opened.append(candidate)
        try:
            handle = open(candidate, "rb")
        except OSError:
            continue
        with handle:
            return load_image(candidate, handle, kernel_module=True)
    return None


def load_image(path: str, handle, *, kernel_module: bool) -> Image | None:
    try:
        elf = ELFFile(handle)
    except ELFError:
        return None
    kind = elf.header["e_type"]
    if kind not in ("ET_EXEC", "ET_DYN") and not (kernel_module and kind == "ET_REL"):
        return None
    vaddr = 0
    if kind == "ET_EXEC":
        for segment in elf.iter_segments():
            h = segment.header
            if h["p_type"] == "PT_LOAD" and h["p_flags"] & PF_X and h["p_offset"] & -h["p_align"] == 0:
                vaddr = h["p_vaddr"] & -h["p_align"]
    minva, maxva = (1 << 64) - 1, 0
    image = Image(path, vaddr, minva, maxva, [])
    for section in elf.iter_sections():
        if section.header["sh_flags"] & SHF_EXECINSTR:
            minva = min(minva, section.header["sh_addr"])
            maxva = max(maxva, section.header["sh_addr"] + section.header["sh_size"])
        if section.header["sh_type"] in ("SHT_SYMTAB", "SHT_DYNSYM"):
            _add_symbols(image, section)
    image.start, image.end = minva, maxva
    return image


def _compare(a: Symbol, b: Symbol) -> int:
    """``pmcstat_symbol_compare``: overlapping ranges compare equal."""
    if a.end <= b.start:
        return -1
    if a.start >= b.end:
        return 1
    return 0


def _add_symbols(image: Image, table) -> None:
    first_time = not image.symbols
    added = []
    for symbol in table.iter_symbols():
        if symbol["st_info"]["type"] != "STT_FUNC" or symbol["st_shndx"] == "SHN_UNDEF":
            continue
        if not first_time and symbol_search(image, symbol["st_value"]) is not None:
            continue
        start = symbol["st_value"] - image.vaddr
        added.append(Symbol(symbol.name, start, start + symbol["st_size"]))
    if not added and not image.symbols:
        return
    image.symbols = sorted(image.symbols + added, key=functools.cmp_to_key(_compare))
    for this, following in zip(image.symbols, image.symbols[1:]):
        if this.start == this.end:
            this.end = following.start


def symbol_search(image: Image, address: int) -> Symbol | None:
    """``pmcstat_symbol_search``: FreeBSD's ``bsearch`` over the sorted symbols."""
    key = Symbol("", address, address + 1)
    base, limit = 0, len(image.symbols)
    while limit:
        probe = base + (limit >> 1)
        order = _compare(key, image.symbols[probe])
        if order == 0:
            return image.symbols[probe]
        if order > 0:
            base = probe + 1
            limit -= 1
        limit >>= 1
    return None


@dataclass
class Mapping:
    low: int
    high: int
    image: Image


@dataclass
class KernelProcess:
    """``pmcstat_kernproc``: the kernel's maps, fed by ``map-in`` records with pid -1."""

    fsroot: str
    kernel_dir: str
    maps: list[Mapping] = field(default_factory=list)
    #: Every path opened, in order.
    opened: list[str] = field(default_factory=list)
    _images: dict[str, Image | None] = field(default_factory=dict)

    def map_in(self, logged: str, start: int) -> Image | None:
        """``PMCLOG_TYPE_MAP_IN``: ``pmcstat_image_from_path`` (cached by path), type, ``pmcstat_image_link``."""
        if logged not in self._images:
            self._images[logged] = load_kernel_image(self.fsroot, self.kernel_dir, logged, self.opened)
        image = self._images[logged]
        if image is None:
            return None
        offset = start - image.vaddr
        new = Mapping(image.start + offset, image.end + offset, image)
        assert new.low < new.high
        at = next((i for i, m in enumerate(self.maps) if m.low >= new.high), len(self.maps))
        self.maps.insert(at, new)
        return image

    def find_map(self, pc: int) -> Mapping | None:
        """``pmcstat_process_find_map``."""
        for mapping in self.maps:
            if mapping.low <= pc < mapping.high:
                return mapping
            if pc < mapping.low:
                return None
        return None

    def resolve(self, pc: int) -> tuple[Image, Symbol | None] | None:
        """The image and function pmcstat's call graph names for a kernel PC."""
        mapping = self.find_map(pc)
        if mapping is None:
            return None
        image = mapping.image
        return image, symbol_search(image, pc - (mapping.low + image.vaddr - image.start))
