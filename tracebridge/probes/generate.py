"""A module's D script and probe map, generated in memory: what ``gen-probes`` writes and ``record`` runs.

Kept apart from the command line so that ``record`` (which writes every file
itself, exclusively, inside the directory it created) and ``gen-probes``
(which writes where ``-o`` says) make the same script from the same call.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tracebridge.probes.dscript import Script, Template, build, load_template

if TYPE_CHECKING:
    from tracebridge.probes.probemap import ProbeMap
    from tracebridge.image.elf import ModuleImage
    from tracebridge.image.select import Selection
    from tracebridge.probes.fbt import FbtOptions
    from tracebridge.probes.probeplan import Plan


@dataclass(frozen=True)
class Generated:
    """A script for one module, with what its probe map needs to say."""

    image: ModuleImage
    template: Template
    plan: Plan
    script: Script
    #: The load address the script was made for (``--base``), if any.
    base: int | None

    def probe_map(self, files: list[str]) -> ProbeMap:
        """The probe map of this script written as ``files`` (one per part; ``-`` for standard output)."""
        # Imported here: only --map and record write one, and its module brings json (7 ms of start-up).
        from tracebridge.probes.probemap import ProbeMap, ProbeMapEntry

        entries = [
            ProbeMapEntry(function=planned.field.text or "", mangled=planned.function.name,
                          demangled=planned.name.name, offset=planned.function.offset,
                          size=planned.function.size, entry=planned.fbt.has_entry, ret=planned.fbt.has_return,
                          descriptions=self.script.descriptions(planned) if planned.field.text else (),
                          script=index)
            for index, part in enumerate(self.script.parts) for planned in part
        ]
        image = self.image
        base = image.fixed_base if image.fixed_base is not None else self.base
        return ProbeMap(module=image.filename, modname=self.plan.module_field, machine=image.machine,
                        template=self.template.name, base=base, size=image.size,
                        scripts=[os.path.basename(f) if f != "-" else "-" for f in files], entries=entries)


def generate(image: ModuleImage, template: str, *, base: int | None = None, modname: str | None = None,
             options: FbtOptions | None = None, selection: Selection | None = None,
             provider: str = "fbt") -> Generated:
    """Plan the module's probes (FBT's or kinst's rules, the selection) and build the ``template`` script.

    A selection that keeps no function, or a template left with no probe, is a usage error.
    """
    from tracebridge.probes.fbt import FbtOptions
    from tracebridge.probes.probeplan import plan_module  # the module reader, FBT's rules, the description fields

    loaded = load_template(template)
    plan = plan_module(image, modname=modname, options=options or FbtOptions(base=base), selection=selection,
                       provider=provider)
    script = build(loaded, plan, base=base)
    script.require_probes()
    return Generated(image, loaded, plan, script, base)
