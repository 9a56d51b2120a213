"""Which module is loaded where: ``--base``, saved ``kldstat`` output, pmcstat ``map-in`` records.

``--base`` has one form everywhere: ``ADDR`` when one module is given,
``MODULE=ADDR`` (by file name) for any of several.  Commands that put
modules at run-time addresses (``symmap``, ``pmc resolve``) take the same
sources, in this order of precedence: an explicit ``--base``, a saved
``kldstat`` listing, then the ``map-in`` records of a pmcstat log.  Modules are named by file name (``if_rem.ko``,
``.ko`` optional when matching); the kernel ELF is always ``kernel`` and
needs no address (it runs where it was linked).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tracebridge.support.errors import UsageError

if TYPE_CHECKING:  # numpy and pyelftools load only when a command runs
    from tracebridge.image.elf import ModuleImage
    from tracebridge.profile.resolve import AddressSpace

KERNEL = "kernel"
#: What ``--base`` takes, for every command's help.
BASE_HELP = ("load address as kldstat shows it (hex): ADDR for the one module given, MODULE=ADDR (by file "
             "name) for one of several; repeatable")


@dataclass(frozen=True)
class BaseSpec:
    """``--base MODULE=ADDR``, or ``--base ADDR`` (``module`` None) for the one module given."""

    module: str | None
    address: int


def parse_base_spec(text: str) -> BaseSpec:
    """``if_rem.ko=ffffffff82a1c000`` or ``ffffffff82a1c000`` (hex as kldstat prints it, ``0x`` optional)."""
    name, equals, address = text.rpartition("=")
    if equals and not name:
        raise argparse.ArgumentTypeError(f"expected ADDR or MODULE=ADDR (as kldstat shows it), got {text!r}")
    try:
        value = int(address, 16)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a hex address: {address!r}") from None
    if not 0 <= value < 1 << 64:
        raise argparse.ArgumentTypeError(f"address out of range: {address!r}")
    return BaseSpec(name or None, value)


def one_module(specs: Sequence[BaseSpec], names: Sequence[str]) -> list[tuple[str, int]]:
    """``(module name, address)`` per ``--base``: a plain ADDR belongs to the one module given.

    A plain ADDR beside several modules is ambiguous (the address of which?),
    and so is an address given twice for one module: both are usage errors.
    """
    named: list[tuple[str, int]] = []
    for spec in specs:
        if spec.module is not None:
            key = find_image(names, spec.module)
            if key is None:
                raise UsageError(f"--base {spec.module}=...: no such module among the inputs "
                                 f"({', '.join(names) or 'none given'})")
        elif len(names) == 1:
            key = names[0]
        elif not names:
            raise UsageError("--base needs --module (which module is loaded there?)")
        else:
            raise UsageError(f"--base {spec.address:x}: {len(names)} modules are given, so name the one loaded "
                             f"there: --base MODULE=ADDR (e.g. --base {os.path.basename(names[0])}={spec.address:x})")
        if any(key == done for done, _ in named):
            raise UsageError(f"--base: two addresses for {key}")
        named.append((key, spec.address))
    return named


def stem(name: str) -> str:
    name = os.path.basename(name)
    return name[:-3] if name.endswith(".ko") else name


def open_images(modules: Iterable[str], kernel: str | None = None, *,
                old_kernel_linker: bool = False) -> dict[str, ModuleImage]:
    """The ELF files by the name the kernel gives them: file name, and ``kernel`` for the kernel."""
    from tracebridge.image.elf import open_module

    images = by_name([open_module(path, init_fini_arrays=not old_kernel_linker) for path in modules])
    if kernel is not None:
        image = open_module(kernel, init_fini_arrays=not old_kernel_linker)
        if image.elf_type != "ET_EXEC":
            raise UsageError(f"{kernel}: --kernel wants the kernel ELF (ET_EXEC), this is {image.elf_type}")
        images[KERNEL] = image
    return images


def by_name(opened: Iterable[ModuleImage]) -> dict[str, ModuleImage]:
    """Opened ELF files by the name the kernel gives them; two of one name are refused."""
    images: dict[str, ModuleImage] = {}
    for image in opened:
        name = KERNEL if image.elf_type == "ET_EXEC" else image.filename
        if name in images:
            raise UsageError(f"{image.path}: a module named {name} was given twice ({images[name].path})")
        images[name] = image
    return images


def find_image(images: Iterable[str], name: str) -> str | None:
    """The image name (a key of the images, say) that ``name`` means (``if_rem``, ``if_rem.ko``, a path)."""
    wanted = stem(name)
    return next((key for key in images if stem(key) == wanted), None)


def load_addresses(images: Mapping[str, ModuleImage], bases: Iterable[BaseSpec] = (),
                   kldstat: str | None = None, map_ins: Mapping[str, int] | None = None) -> dict[str, int]:
    """Base address per image name, from the sources in order of precedence; the kernel needs none."""
    movable = [name for name, image in images.items() if image.fixed_base is None]
    placed: dict[str, int] = dict(one_module(list(bases), movable or list(images)))
    if kldstat is not None:
        from tracebridge.readers.kldstat import read_kldstat

        listing = read_kldstat(kldstat)
        for key, image in images.items():
            found = listing.find(key)
            if key not in placed and image.fixed_base is None and found is not None:
                placed[key] = found.address
    for key, address in (map_ins or {}).items():
        target = find_image(images, key)
        if target is not None and target not in placed and images[target].fixed_base is None:
            placed[target] = address
    return placed


def build_space(images: Mapping[str, ModuleImage], placed: Mapping[str, int], *,
                require_all: bool, searched: Sequence[str] = ()) -> AddressSpace:
    """An address space with every placed image (and the kernel, which places itself).

    ``searched`` names the files that were looked in for addresses (kldstat, pmc log), so the
    error for a module missing from them says so rather than asking for what was given.
    """
    from tracebridge.profile.resolve import AddressSpace

    space = AddressSpace()
    missing = []
    for name, image in images.items():
        if image.fixed_base is not None:
            space.add(image, None, name)
        elif name in placed:
            space.add(image, placed[name], name)
        else:
            missing.append(name)
    if missing and require_all:
        where = f" (not listed in {', '.join(searched)})" if searched else ""
        raise UsageError(f"no load address for {', '.join(missing)}{where}: give --base MODULE=ADDR, "
                         "--kldstat FILE (saved `kldstat -v`) or --pmclog FILE (its map-in records)")
    return space


def add_placement_arguments(parser: argparse.ArgumentParser, *, modules_flag: bool) -> None:
    """``-m/--module`` (when the modules are not positional), ``--kernel``, ``--base``, ``--kldstat``."""
    group = parser.add_argument_group("modules and load addresses")
    if modules_flag:
        group.add_argument("-m", "--module", action="append", default=[], dest="modules", metavar="MODULE.ko",
                           help="kernel module ELF whose PCs to name (repeatable); matched by file name")
    group.add_argument("--kernel", metavar="KERNEL", help="the kernel ELF that ran (e.g. /boot/kernel/kernel)")
    group.add_argument("--base", action="append", default=[], type=parse_base_spec, metavar="[MODULE=]ADDR",
                       help=BASE_HELP)
    group.add_argument("--kldstat", metavar="FILE", help="saved `kldstat` or `kldstat -v` output")
    add_old_kernel_linker_argument(group)


def add_old_kernel_linker_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--old-kernel-linker``: one option and one text for every command that lays modules out."""
    parser.add_argument("--old-kernel-linker", action="store_true",
                        help="lay out modules as kernels before 2024 did (no INIT/FINI_ARRAY sections)")


def placement_inputs(args: argparse.Namespace) -> list[str]:
    """Files the placement options read (outputs must never overwrite them)."""
    return [*args.modules, *(p for p in (args.kernel, args.kldstat) if p)]
