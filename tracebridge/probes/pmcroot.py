"""A root for ``pmcstat -r``: the real system, with Rust modules replaced by their pmcstat-ready images.

Where libpmcstat looks (``lib/libpmcstat/libpmcstat_image.c`` on HEAD,
``pmcstat_image_get_elf_params``): a kernel file named NAME by a ``map-in``
record (pid -1) is opened as ``FSROOT/KERNELPATH/NAME`` (``"%s%s/%s"`` of
``pa_fsroot``, ``pa_kernel`` and the logged path), and only if that fails as
``FSROOT/boot/modules/NAME``; a userland object as ``FSROOT/PATHNAME``.
``pmcstat -r ROOT`` sets ``pa_fsroot``; KERNELPATH is ``-k DIR`` or
``kern.bootfile`` (``/boot/kernel/kernel``), and ``main()`` in
``usr.sbin/pmcstat/pmcstat.c`` stats ``FSROOT/KERNELPATH`` and keeps its
``dirname`` when it is a file, so the kernel itself must be reachable inside
the root.  hwpmc logs each loaded kernel file by ``lf->filename``, the
basename (``linker_hwpmc_list_objects`` and the ``PMC_FN_KLD_LOAD`` hook in
``sys/kern/kern_linker.c``); a kernel that logs the full path P makes
libpmcstat open ``FSROOT/KERNELPATH//P`` first.

So the root holds, for the kernel directory K (``--kernel-dir``,
``/boot/kernel`` by default) and each module NAME.ko:

* ``ROOT/boot/modules/NAME.ko``: the image (:mod:`.pmcimage`);
* ``ROOT/K/NAME.ko``: a relative symlink to it, so the first lookup finds
  it even when the system's K has a file of that name, and ``pmcstat -k
  ROOT/K`` (what ``pmcannotate -k`` passes on) finds it without ``-r``;
* ``ROOT/K/P`` for the full paths P the module may be logged under
  (``/boot/modules/NAME.ko``, ``/boot/kernel/NAME.ko``, the absolute path
  of the MODULE.ko given, and ``--loaded-from``): relative symlinks too;
* everything else resolves to the system: each directory of the root is a
  real directory whose other entries are symlinks to the same entries of
  the system (``/usr``, ``/lib``, ``/boot/kernel/kernel``, other modules),
  so userland objects and the kernel are found as without ``-r``.  A
  directory under K mirrors both ``SYSTEM/K/sub`` and ``SYSTEM/sub`` (the
  second for full-path lookups).

The tree is built in a fresh directory next to ROOT and renamed into
place, so nothing is written through an existing file or symlink.  An
existing ROOT is replaced only with ``force`` and only if tracebridge made
it (it holds :data:`MARKER`); an empty directory is simply reused.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tracebridge.support.errors import OutputError, UsageError

if TYPE_CHECKING:
    from tracebridge.image.elf import ModuleImage

#: Written at the top of every root; ``--force`` replaces only a directory holding it.
MARKER = ".tracebridge-pmcstat-root"
DEFAULT_KERNEL_DIR = "/boot/kernel"
MODULES_DIR = "boot/modules"


@dataclass
class RootPlan:
    """What the root holds: images by path, relative symlinks to them, and the real directories."""

    system: str
    kernel_dir: str
    #: ROOT-relative path -> image bytes.
    images: dict[str, bytes] = field(default_factory=dict)
    #: ROOT-relative path -> ROOT-relative path of the image it points to.
    aliases: dict[str, str] = field(default_factory=dict)
    #: Image path -> how many functions its symbol table names.
    functions: dict[str, int] = field(default_factory=dict)

    def real_dirs(self) -> list[str]:
        """Every directory that must be real (an ancestor of something placed), parents first."""
        dirs = {""}
        for path in (*self.images, *self.aliases):
            parent = os.path.dirname(path)
            while parent not in dirs:
                dirs.add(parent)
                parent = os.path.dirname(parent)
        dirs.add(self.kernel_dir)
        parent = os.path.dirname(self.kernel_dir)
        while parent:
            dirs.add(parent)
            parent = os.path.dirname(parent)
        return sorted(dirs, key=lambda d: (d.count("/") if d else -1, d))

    def mirrored(self, directory: str) -> list[str]:
        """The system directories whose entries ``ROOT/directory`` mirrors, first one winning."""
        sources = [os.path.join(self.system, directory)]
        prefix = self.kernel_dir + "/"
        if directory.startswith(prefix):
            sources.append(os.path.join(self.system, directory[len(prefix):]))
        return sources


def plan_root(modules: Sequence[tuple[ModuleImage, Sequence[str]]], *, system: str = "/",
              kernel_dir: str = DEFAULT_KERNEL_DIR, mangled: bool = False) -> RootPlan:
    """Lay out the root for ``(image, full paths it may be logged under)`` pairs (see the module docstring)."""
    from tracebridge.probes.pmcimage import image_symbols, pmcstat_image  # numpy: only when a root is made

    kernel = _relative(kernel_dir, "--kernel-dir")
    plan = RootPlan(system=system, kernel_dir=kernel)
    for image, loaded_from in modules:
        name = image.filename
        target = f"{MODULES_DIR}/{name}"
        if target in plan.images:
            raise UsageError(f"two modules are named {name}: pmcstat tells kernel files apart by name only")
        symbols = image_symbols(image, mangled=mangled)
        plan.images[target] = pmcstat_image(image, symbols)
        plan.functions[target] = len(symbols)
        plan.aliases[f"{kernel}/{name}"] = target
        for path in (f"/boot/modules/{name}", f"/boot/kernel/{name}", *loaded_from):
            plan.aliases[f"{kernel}/{_relative(path, 'a full module path')}"] = target
    placed = set(plan.images) | set(plan.aliases)
    for directory in plan.real_dirs():
        if directory in placed:
            raise UsageError(f"{directory} would be both a directory and a module image in the root")
    return plan


def _relative(path: str, what: str) -> str:
    """An absolute path as a ROOT-relative one; refuses ``..`` (it would leave the root)."""
    if not os.path.isabs(path):
        raise UsageError(f"{what} must be an absolute path, not {path!r}")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise UsageError(f"{what} {path!r} must name a file below / without '..'")
    return "/".join(parts)


def write_root(plan: RootPlan, root: str, *, force: bool = False) -> None:
    """Build the tree next to ``root`` and move it into place (see the module docstring for the rules)."""
    root = os.path.abspath(root)
    replacing = _check_target(root, force)
    parent = os.path.dirname(root)
    try:
        staging = tempfile.mkdtemp(prefix=f".{os.path.basename(root)}.", dir=parent)
    except OSError as exc:
        raise OutputError(f"{root}: cannot write here: {exc.strerror or exc}") from None
    try:
        _build(plan, staging)
        if replacing:
            old = tempfile.mkdtemp(prefix=f".{os.path.basename(root)}.old.", dir=parent)
            os.rename(root, os.path.join(old, "root"))
            os.rename(staging, root)
            shutil.rmtree(old)  # never follows symlinks: the system's files are not touched
        else:
            if os.path.isdir(root) and not os.path.islink(root):
                os.rmdir(root)  # empty: checked above
            os.rename(staging, root)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise OutputError(f"{root}: cannot write the root: {exc.strerror or exc}") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _check_target(root: str, force: bool) -> bool:
    """Whether an existing root is to be replaced; refuses anything else that exists."""
    if os.path.islink(root):
        raise UsageError(f"{root} is a symbolic link; give the root's own path")
    if not os.path.exists(root):
        if not os.path.isdir(os.path.dirname(root)):
            raise UsageError(f"the parent directory of {root} does not exist")
        return False
    if not os.path.isdir(root):
        raise UsageError(f"{root} exists and is not a directory")
    if not os.listdir(root):
        return False
    if not force:
        raise UsageError(f"{root} exists and is not empty; --force replaces a root pmcstat-root made")
    if not os.path.isfile(os.path.join(root, MARKER)) or os.path.islink(os.path.join(root, MARKER)):
        raise UsageError(f"{root} is not a root pmcstat-root made (no {MARKER}); "
                         "not replacing it even with --force: remove it yourself or choose another path")
    return True


def _build(plan: RootPlan, top: str) -> None:
    real = plan.real_dirs()
    placed = set(plan.images) | set(plan.aliases) | set(real)
    for directory in real:
        here = os.path.join(top, directory)
        os.makedirs(here, exist_ok=True)
        for source in plan.mirrored(directory):
            for entry in _entries(source):
                path = f"{directory}/{entry}" if directory else entry
                if path not in placed and not os.path.lexists(os.path.join(here, entry)):
                    os.symlink(os.path.join(source, entry), os.path.join(here, entry))
    for path, contents in plan.images.items():
        with open(os.path.join(top, path), "xb") as handle:
            handle.write(contents)
    for path, target in plan.aliases.items():
        os.symlink(os.path.relpath(target, os.path.dirname(path)), os.path.join(top, path))
    with open(os.path.join(top, MARKER), "x") as handle:
        handle.write("Made by `tracebridge pmcstat-root`; use with pmcstat -r. "
                     "tracebridge pmcstat-root --force replaces it.\n")


def _entries(directory: str) -> list[str]:
    try:
        return sorted(os.listdir(directory))
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return []
