"""``tracebridge pmc resolve``: hwpmc samples to folded stacks with the modules' real function names.

The input is ``pmcstat -R LOG -o out.txt`` or the raw log itself
(``pmcstat -O LOG``: records, every kernel PC resolved here from the module
layouts, the right way for Rust modules), or ``pmcstat -R LOG -G out.txt``
(pmcstat's callgraph: folded as stackcollapse-pmc.pl folds it, hex nodes of
given modules named, but pmcstat's own wrong names for per-function-section
modules stay).
"""

from __future__ import annotations

import argparse
import sys

from tracebridge.support import spool
FORMATS = ("log", "callgraph")


def register(subparsers: argparse._SubParsersAction) -> None:
    from tracebridge.profile.labels import add_label_arguments
    from tracebridge.readers.placement import add_placement_arguments

    parser = subparsers.add_parser("pmc", help="read hwpmc/pmcstat output",
                                   description="Read hwpmc data as pmcstat prints it.")
    commands = parser.add_subparsers(dest="pmc_command", metavar="COMMAND", required=True)
    resolve = commands.add_parser(
        "resolve", help="hwpmc log, pmcstat -o log or -G callgraph to folded stacks (or speedscope JSON)",
        description="Resolve the kernel PCs of a raw hwpmc log (pmcstat -O) or its `pmcstat -R LOG -o` text "
                    "with the layouts of the given modules (load addresses from the log's map-in records, "
                    "--base or --kldstat), or fold a "
                    "`pmcstat -R LOG -G` callgraph as stackcollapse-pmc.pl does, and write folded stacks. "
                    "A summary of resolved and unresolved PCs goes to standard error.")
    resolve.add_argument("input", metavar="INPUT", type=spool.readable,
                         help="raw hwpmc log, pmcstat -o or -G output (detected); - for standard input")
    add_placement_arguments(resolve, modules_flag=True)
    resolve.add_argument("--input-format", choices=FORMATS,
                         help="read INPUT as a record log (raw or -o) or a -G callgraph instead of detecting it")
    resolve.add_argument("--pmc", metavar="EVENT",
                         help="keep the samples of one PMC (event name as pmcstat prints it, or its hex id)")
    add_label_arguments(resolve)
    resolve.add_argument("--format", "-f", choices=("folded", "speedscope"), default="folded",
                         help="output format (default folded)")
    resolve.add_argument("-o", "--output", metavar="FILE",
                         help="write here instead of standard output (replaced atomically)")
    resolve.add_argument("-q", "--quiet", action="store_true",
                         help="no summary on standard error (warnings that the log does not fit a module stay)")
    resolve.add_argument("--strict", action="store_true",
                         help="a module the log does not fit (wrong load address, another build) is an error "
                              "(exit 2), not a warning")
    resolve.set_defaults(func=run_resolve)


def run_resolve(args: argparse.Namespace) -> int:
    from tracebridge.readers import pmcstat
    from tracebridge.profile.labels import label_options_from_args
    from tracebridge.support.outputs import open_output
    from tracebridge.readers.placement import build_space, load_addresses, open_images, placement_inputs
    from tracebridge.profile.consistency import Evidence, report_fit
    from tracebridge.profile.resolve import ResolutionCounts

    images = open_images(args.modules, args.kernel, old_kernel_linker=args.old_kernel_linker)
    evidence = Evidence()
    for name, image in images.items():
        evidence.watch(name, image)
    placed = load_addresses(images, args.base, args.kldstat)
    kind = args.input_format or pmcstat.detect(args.input)
    counts = ResolutionCounts()
    if kind == "log":
        space = build_space(images, placed, require_all=False)
        profile = pmcstat.read_callchain_log(args.input, space, images, pmc=args.pmc, counts=counts,
                                             evidence=evidence)
        unused = sorted(set(images) - {m.name for m in space.modules} - set(counts.by_module))
        if unused:
            profile.metadata.notes.append(f"never mapped in by the log: {', '.join(unused)}")
    else:
        from tracebridge.readers.pmcgraph import read_callgraph

        profile = read_callgraph(args.input, images, pmc=args.pmc, evidence=evidence)
    if not args.quiet:
        _summary(args.input, profile, counts)
    report_fit(evidence, strict=args.strict, verbose=not args.quiet)
    labels = label_options_from_args(args)
    with open_output(args.output, inputs=[args.input, *placement_inputs(args)]) as out:
        if args.format == "speedscope":
            from tracebridge.render.speedscope import write_speedscope

            write_speedscope(out, profile, labels)
        else:
            from tracebridge.render.folded import write_folded

            write_folded(out, profile, labels)
    return 0


def _summary(path: str, profile, counts) -> None:
    for note in profile.metadata.notes:
        print(f"tracebridge: {path}: {note}", file=sys.stderr)
    for module, hits in sorted(counts.by_module.items(), key=lambda item: -item[1]):
        print(f"tracebridge:   {module or '(no module)'}: {hits} PCs", file=sys.stderr)
