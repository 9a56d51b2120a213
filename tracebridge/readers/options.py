"""How to read inputs (:class:`LoadOptions`: modules, load addresses, probe map) and what reading gives (:class:`Loaded`).

The types every reader takes and returns; kept out of the registry so that
a reader never imports the module that imports it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from tracebridge.profile.consistency import Evidence
from tracebridge.profile.model import Profile
from tracebridge.support.errors import InputError, UsageError

if TYPE_CHECKING:
    from tracebridge.image.elf import ModuleImage
    from tracebridge.profile.resolve import AddressSpace
    from tracebridge.readers.dtrace import Aggregation
    from tracebridge.readers.dtrace_frames import FrameNamer
    from tracebridge.readers.kldstat import Kldstat


@dataclass
class Loaded:
    """What the inputs held: the stacks, and DTrace aggregations kept as tables (histograms)."""

    profile: Profile
    aggregations: list[Aggregation] = field(default_factory=list)


@dataclass
class LoadOptions:
    """How to turn what an input prints into frames; shared by all readers."""

    #: Forced input format name, or None to auto-detect each file.
    format: str | None = None
    #: Kernel modules (``.ko``) whose addresses frames may fall into.
    modules: tuple[str, ...] = ()
    #: Load address for each of :attr:`modules`, in order; None (or missing): from :attr:`kldstat`.
    bases: tuple[int | None, ...] = ()
    #: Saved ``kldstat -v`` output giving the load addresses.
    kldstat: str | None = None
    #: Probe map JSON written by ``tracebridge gen-probes``.
    probe_map: str | None = None
    #: Lay out modules as kernels before 2024 did (no INIT/FINI_ARRAY sections).
    old_kernel_linker: bool = False
    #: With a bundle: add the kernel its manifest names (only a regular file with the recorded SHA-256).
    bundle_kernel: bool = False
    #: Keep each frame's ``+0xOFF`` (frames at different offsets stay apart); off, inputs read faster.
    offsets: bool = False
    #: Expand each module frame into its DWARF inline chain (``--inline``); read with offsets, which
    #: the chains need, and dropped after unless :attr:`offsets` asks for them.
    inline: bool = False
    #: Keep file:line on every expanded frame (``report --by line``, flame graph tooltips).
    inline_lines: bool = False
    #: Debug file for each of :attr:`modules`, in order (``--debug``); the rest are searched for.
    debug: tuple[str, ...] = ()
    #: What the values of scalar DTrace aggregations are, in print order (the last repeats):
    #: ``count``, ``sum``, ``avg``, ``min``, ``max``.
    value_kinds: tuple[str, ...] = ("count",)
    #: Which printed DTrace aggregation (1-based) makes the profile; None: the first that adds up.
    aggregation: int | None = None
    #: Keep each sample's CPU and process where the input records them (``Profile.labelled``), for
    #: outputs that carry them (pprof); off, a record log's stacks cost no more than the stacks.
    sample_labels: bool = False
    #: A module the capture does not fit is an error, not a warning (``--strict``).
    strict: bool = False
    #: Print the per-module resolution summary (``-v``).
    verbose: bool = False
    #: Whether the capture fits the modules, counted as frames are resolved.  Shared by the
    #: copies a bundle makes (``dataclasses.replace`` keeps the object).
    evidence: Evidence = field(default_factory=Evidence)
    #: How printouts of one DTrace aggregation combine: ``sum``, ``last`` or ``each`` (kept apart);
    #: None: ``last`` when they are running totals, else ``sum`` (see :mod:`tracebridge.readers.dtrace_printouts`).
    printouts: str | None = None

    @cached_property
    def images(self) -> list[ModuleImage]:
        if len(self.bases) > len(self.modules):
            raise UsageError("--base needs --module (which module is loaded there?)" if not self.modules else
                             f"{len(self.bases)} load addresses for {len(self.modules)} --module files")
        if not self.modules:
            return []
        from tracebridge.image.elf import open_module

        images = [open_module(m, init_fini_arrays=not self.old_kernel_linker) for m in self.modules]
        for image in images:
            self.evidence.watch(image.frame_module, image)
        return images

    @property
    def read_offsets(self) -> bool:
        """Whether readers keep frame offsets: asked for, or needed by :attr:`inline`."""
        return self.offsets or self.inline

    @cached_property
    def address_space(self) -> AddressSpace | None:
        """The modules whose load address is known, at that address (None: no such module).

        A module given without an address still names frames whose text
        DTrace cut short (see :mod:`tracebridge.readers.dtrace_frames`).
        """
        images = self.images
        listing = None
        if self.kldstat is not None:
            from tracebridge.readers.kldstat import read_kldstat

            listing = read_kldstat(self.kldstat)
        if not images and listing is None:
            return None
        from tracebridge.profile.resolve import AddressSpace

        bases: list[int | None] = list(self.bases) + [None] * (len(images) - len(self.bases))
        if listing is not None:  # for the modules no --base placed
            unplaced = [i for i, base in enumerate(bases) if base is None]
            for i, base in zip(unplaced, _kldstat_bases(listing, [images[i] for i in unplaced])):
                bases[i] = base
        placed = [(image, base) for image, base in zip(images, bases)
                  if base is not None or image.fixed_base is not None]
        if not placed and listing is None:
            return None
        space = AddressSpace()
        for image, base in placed:
            loaded = space.add(image, base)
            self.evidence.placed(loaded.name, loaded.base)
        if listing is not None:
            listing.place_unread(space)
        return space

    @cached_property
    def namer(self) -> FrameNamer:
        from tracebridge.readers.dtrace_frames import FrameNamer
        from tracebridge.probes.probemap import ProbeMap

        probe_map = ProbeMap.load(self.probe_map) if self.probe_map is not None else None
        owners: dict[str, str | None] = {}
        for image in self.images:
            module = image.frame_module
            for function in image.functions:
                owners[function.name] = module if owners.get(function.name, module) == module else None
        return FrameNamer(self.address_space, probe_map, owners, self.evidence)


def _kldstat_bases(kldstat: Kldstat, images: list) -> list[int | None]:
    """Load addresses from saved ``kldstat -v`` output, matched by file name."""
    bases: list[int | None] = []
    for image in images:
        loaded = kldstat.find(image.filename)
        if loaded is None and image.fixed_base is None:
            names = ", ".join(f.name for f in kldstat.files)
            raise InputError(kldstat.path, f"does not list {image.filename} (loaded: {names})")
        bases.append(loaded.address if loaded is not None and image.fixed_base is None else None)
    return bases
