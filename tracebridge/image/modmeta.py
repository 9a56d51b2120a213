"""A module's ``DECLARE_MODULE`` / ``MODULE_DEPEND`` / ``MODULE_VERSION`` records.

FBT refuses a whole module when it depends on a file whose name starts with
``dtrace`` (``fbt_provide_module`` walks ``lf->deps``): a module that registers
its own DTrace provider must ``MODULE_DEPEND`` on ``dtrace``, and is then
invisible to FBT.  The dependency list is in the file: ``sys/module.h``'s
macros put a pointer to a ``struct mod_metadata`` into the
``set_modmetadata_set`` linker set, and each record holds

    int md_version; int md_type; const void *md_data; const char *md_cval;

where ``md_type`` 1 (``MDT_DEPEND``) names a module depended on in ``md_cval``,
2 (``MDT_MODULE``) declares a module, 3 (``MDT_VERSION``) versions one.  Every
pointer in there is a relocation in the file (:mod:`tracebridge.image.relocs`).

The kernel compares the dependency's *file* name; the record names the
*module*.  DTrace's own modules live in files of the same name (``dtrace.ko``,
``dtraceall.ko``), so a module-name prefix of ``dtrace`` stands for the file's.
"""

from __future__ import annotations

from dataclasses import dataclass

from tracebridge.image.elf import SHT_NOBITS, ModuleImage
from tracebridge.image.relocs import Relocations

SET_SECTION = "set_modmetadata_set"
KINDS = {1: "depend", 2: "module", 3: "version", 4: "pnp"}
#: Longest name read from a record (``MAXMODNAME`` is 32; be generous, stay bounded).
_NAME_MAX = 256


@dataclass(frozen=True, slots=True)
class ModMetadata:
    """One ``struct mod_metadata`` record."""

    kind: str
    name: str


def module_metadata(image: ModuleImage, relocations: Relocations | None = None) -> list[ModMetadata]:
    """Every readable record of the module's ``set_modmetadata_set``, in set order.

    Records whose pointers cannot be followed (a hand-made or damaged file)
    are left out: the answer is then "no such dependency", as it would be for
    a module without the set.
    """
    # Pointers live in the file: a NOBITS "set" holds none (and its size, unbounded by the file, is no loop bound).
    sets = [s for s in image.sections_named(SET_SECTION) if s.loaded and s.type != SHT_NOBITS]
    if not sets:
        return []
    relocations = relocations or Relocations(image)
    pointer = image.bits // 8
    # md_version and md_type (two ints), then md_data and md_cval (pointers).
    cval_at = 8 + pointer
    order = "little" if image.little_endian else "big"
    records = []
    for section in sets:
        for slot in range(0, section.size - pointer + 1, pointer):
            record = relocations.pointer(section.index, slot)
            located = relocations.locate(record) if record is not None else None
            if located is None:
                continue
            holder, offset = located
            kind = relocations.read(holder, offset + 4, 4)
            name_at = relocations.pointer(holder.index, offset + cval_at)
            name = _cstring(relocations, name_at) if name_at is not None else None
            if kind is None or name is None:
                continue
            code = int.from_bytes(kind, order)
            records.append(ModMetadata(KINDS.get(code, str(code)), name))
    return records


def dtrace_dependencies(records: list[ModMetadata]) -> list[str]:
    """Names of modules depended on that make FBT skip the whole module."""
    return [r.name for r in records if r.kind == "depend" and r.name.startswith("dtrace")]


def _cstring(relocations: Relocations, module_offset: int) -> str | None:
    located = relocations.locate(module_offset)
    if located is None:
        return None
    section, offset = located
    raw = relocations.read(section, offset, min(_NAME_MAX, section.size - offset))
    if raw is None:
        return None
    end = raw.find(b"\0")
    return raw[:end if end >= 0 else len(raw)].decode("latin-1")
