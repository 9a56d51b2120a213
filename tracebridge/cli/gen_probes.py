"""``tracebridge gen-probes``: a ready-to-run D script for a module's functions."""

from __future__ import annotations

import argparse
import os

from tracebridge.support import gcpause, quickexit
from tracebridge.cli.common import add_base_argument, add_module_argument, load_module
from tracebridge.cli.fbt_options import add_fbt_arguments, fbt_options_from_args
from tracebridge.probes.dscript import TEMPLATES, part_files
from tracebridge.probes.generate import generate
from tracebridge.support.errors import UsageError
from tracebridge.support.outputs import check_not_input, open_output
from tracebridge.image.select import add_selection_arguments, selection_from_args


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "gen-probes", help="write a DTrace script probing a module's functions through FBT",
        description="Write a D script that traces the module's functions with the FBT probes FreeBSD will "
                    "create for them (see 'tracebridge symbols' for which those are), with probe "
                    "descriptions libdtrace accepts even for Rust names ('$' becomes the glob '?', names "
                    "over 191 characters become a checked prefix*suffix glob). Functions without the "
                    "probes the template needs are listed in a comment. Templates: count (calls per "
                    "function), latency (entry-to-return time, recursion-safe), flow (indented calls per "
                    "thread), stack (kernel stacks sampled at 997 Hz in the module), args (arguments and "
                    "return values).")
    add_module_argument(parser)
    parser.add_argument("--template", "-t", choices=TEMPLATES, default="count",
                        help="what the script measures (default count)")
    parser.add_argument("-o", "--output", metavar="FILE",
                        help="write the script here (default standard output); a script too large for one "
                             "DTrace program is split into FILE, FILE.part2, ... (named in its header)")
    parser.add_argument("--map", metavar="FILE.json",
                        help="also write the probe map: each traced function's descriptions, mangled and "
                             "demangled names, offset and probes")
    kinst = parser.add_argument_group("kinst (FreeBSD 14+; amd64, arm64, riscv)")
    kinst.add_argument("--provider", choices=("fbt", "kinst"), default="fbt",
                       help="fbt (default), or kinst: kinst:NAME.ko:SYMBOL:OFFSET probes, the entry at offset 0 "
                            "and one per ret for the selected functions (exact names: no '$', at most 191 "
                            "characters; amd64: push %%rbp at byte 0, arm64: an stp/sub sp frame, riscv: "
                            "sd ra and a ret)")
    kinst.add_argument("--at", action="append", default=[], metavar="FILE:LINE",
                       help="with --provider kinst: a probe at the first instruction of each address range "
                            "the DWARF line table gives this line (FILE a path suffix), in every function and "
                            "inlined copy (repeatable; templates count and stack)")
    kinst.add_argument("--inlined", action="append", default=[], metavar="NAME",
                       help="with --provider kinst: a probe at the start of each address range of each "
                            "inlined copy of the functions this glob matches (demangled names; repeatable)")
    kinst.add_argument("--debug", metavar="FILE",
                       help="the module's debug file for --at/--inlined (default: NAME.ko.debug or "
                            "NAME.ko.full beside it, /usr/lib/debug, the module itself)")
    parser.add_argument("--module-name", metavar="NAME",
                        help="FBT's module name if the file will be loaded under another name "
                             "(default: the file name without .ko)")
    add_base_argument(parser)
    add_fbt_arguments(parser)
    add_selection_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Hundreds of thousands of small acyclic objects on a big module: see gcpause.
    with gcpause.paused():
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    if args.module_name is not None and not args.module_name:
        raise UsageError("--module-name must not be empty")
    for path in (args.output, args.map):
        if path not in (None, "-"):
            check_not_input(path, [args.module])
    if args.map is not None and args.map == args.output:
        raise UsageError("--map and -o name the same file")
    if (args.at or args.inlined) and args.provider != "kinst":
        raise UsageError("--at and --inlined place kinst probes: add --provider kinst")
    image = load_module(args)
    if args.at or args.inlined:
        return _kinst_sites(args, image)
    generated = generate(image, args.template, base=args.base, modname=args.module_name,
                         options=fbt_options_from_args(args, args.base), selection=selection_from_args(args),
                         provider=args.provider)
    files = part_files(args.output, len(generated.script.parts))
    for index, path in enumerate(files):
        with open_output(None if path == "-" else path, inputs=[args.module]) as out:
            out.write(generated.script.text(index, files))
    if args.map is not None:
        generated.probe_map(files).save(args.map, inputs=[args.module])
    quickexit.keep(generated)  # a big module's plan: 600k objects not to free one by one
    return 0


def _kinst_sites(args: argparse.Namespace, image) -> int:
    """``--at``/``--inlined``: kinst probes placed from the module's DWARF."""
    from tracebridge.image.dwarf import module_index
    from tracebridge.probes.kinst import SitePlanner
    from tracebridge.probes.kinst_script import site_entries, site_script
    from tracebridge.probes.probemap import ProbeMap

    index, searched = module_index(image, args.debug)
    if index is None:
        raise UsageError(f"--at/--inlined need the module's DWARF; none found (looked in {', '.join(searched)})")
    planner = SitePlanner(image, index)
    sites, refusals, asked = [], [], []
    for text in args.at:
        file, _, line = text.rpartition(":")
        if not file or not line.isdigit() or int(line) == 0:
            raise UsageError(f"--at {text}: expected FILE:LINE (FILE a path suffix, LINE a number)")
        found, refused = planner.at_line(file, int(line))
        sites += found
        refusals += refused
        asked.append(f"--at {text}")
    for pattern in args.inlined:
        found, refused = planner.inlined(pattern)
        sites += found
        refusals += refused
        asked.append(f"--inlined {pattern}")
    unique = {(s.function.name, s.offset): s for s in sites}
    sites = sorted(unique.values(), key=lambda s: s.module_offset)
    text = site_script(image, args.template, asked, sites, refusals)
    with open_output(args.output, inputs=[args.module]) as out:
        out.write(text)
    if args.map is not None:
        files = [args.output or "-"]
        ProbeMap(module=image.filename, modname=image.filename, machine=image.machine, template=args.template,
                 base=args.base, size=image.size, scripts=[os.path.basename(f) if f != "-" else "-" for f in files],
                 sites=site_entries(image, sites)).save(args.map, inputs=[args.module])
    return 0
