"""``tracebridge symmap``: where every function of the kernel and its modules lives at run time.

``--format map`` writes ``START END NAME`` lines (hex, END exclusive) with
``#`` comments for what the symbol table alone would not tell: zero-size
symbols stretched to the next symbol, overlapping symbols split, aliases.
``perf`` writes the ``START SIZE NAME`` map other profilers read (perf,
samply), without comments; ``json`` and ``csv`` add the mangled symbol,
the module and the offset from the module base.  Ranges follow
:mod:`tracebridge.profile.resolve`, the rules every other command resolves with.
"""

from __future__ import annotations

import argparse
import sys

from tracebridge.cli.common import add_csv_raw_argument
from tracebridge.support.outputs import open_output

FORMATS = ("map", "perf", "json", "csv")
COLUMNS = ("start", "end", "size", "module", "offset", "name", "symbol", "note")


def register(subparsers: argparse._SubParsersAction) -> None:
    from tracebridge.readers.placement import add_placement_arguments

    parser = subparsers.add_parser(
        "symmap", help="write a run-time symbol map (START END NAME) for modules and the kernel",
        description="Write where every function of the given modules (and the kernel ELF) lives at run time, "
                    "one range per line in address order, with demangled names. Load addresses come from "
                    "--base, a saved `kldstat -v` listing, or the map-in records of a hwpmc log.")
    parser.add_argument("modules", nargs="*", metavar="MODULE.ko", help="kernel module ELF files")
    add_placement_arguments(parser, modules_flag=False)
    parser.add_argument("--pmclog", metavar="FILE",
                        help="raw hwpmc log (pmcstat -O) or its `pmcstat -R LOG -o` text whose kernel map-in "
                             "records give the load addresses")
    parser.add_argument("--format", "-f", choices=FORMATS, default="map",
                        help="map: START END NAME; perf: START SIZE NAME (perf-PID.map); json/csv: every column")
    add_csv_raw_argument(parser)
    parser.add_argument("-o", "--output", metavar="FILE",
                        help="write here instead of standard output (replaced atomically)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tracebridge.support.errors import UsageError
    from tracebridge.readers.placement import build_space, load_addresses, open_images, placement_inputs

    if not args.modules and not args.kernel:
        raise UsageError("symmap needs at least one MODULE.ko or --kernel")
    images = open_images(args.modules, args.kernel, old_kernel_linker=args.old_kernel_linker)
    map_ins = None
    if args.pmclog:
        from tracebridge.readers.pmcstat import log_map_ins

        map_ins = log_map_ins(args.pmclog)
    placed = load_addresses(images, args.base, args.kldstat, map_ins)
    space = build_space(images, placed, require_all=True, searched=[p for p in (args.kldstat, args.pmclog) if p])
    rows = symbol_rows(space)
    if not rows:  # an empty map would name nothing, silently
        raise UsageError(f"no function to map: the symbol tables of {', '.join(images)} hold no function")
    inputs = placement_inputs(args) + ([args.pmclog] if args.pmclog else [])
    with open_output(args.output, inputs=inputs) as out:
        if args.format == "map":
            _write_map(out, space, rows)
        elif args.format == "perf":
            out.writelines(f"{r['start']:x} {r['size']:x} {r['name']}\n" for r in rows)
            for row in rows:
                if row["note"]:
                    print(f"tracebridge: note: {row['name']}: {row['note']}", file=sys.stderr)
        else:
            from tracebridge.render.tables import write_rows

            write_rows(out, rows, COLUMNS, args.format, csv_raw=args.csv_raw)
    return 0


def symbol_rows(space) -> list[dict]:
    """One row per owned range, in address order, with a note where the symbol table was bent."""
    from tracebridge.image.demangle import demangle_symbol

    rows = []
    for segment in space.segments:
        placement = space.placements[segment.placement]
        module = space.modules[placement.module]
        notes = []
        if placement.stretched:
            notes.append("size 0 in the symbol table: stretched to the next symbol (as pmcstat does)")
        if (segment.start, segment.end) != (placement.start, placement.end):
            notes.append(f"the symbol spans {placement.start:#x}-{placement.end:#x}; overlapping functions own "
                         "the rest (a later start wins, an enclosing function resumes after it)")
        if placement.aliases:
            notes.append("also named " + ", ".join(demangle_symbol(a.name).name for a in placement.aliases))
        rows.append({
            "start": segment.start, "end": segment.end, "size": segment.end - segment.start,
            "module": module.name, "offset": segment.start - module.base,
            "name": demangle_symbol(placement.function.name).name, "symbol": placement.function.name,
            "note": "; ".join(notes),
        })
    return rows


def _write_map(out, space, rows: list[dict]) -> None:
    width = 16 if any(m.image is not None and m.image.bits == 64 for m in space.modules) else 8
    out.write("# tracebridge symmap: START END NAME (hex, END exclusive), in address order\n")
    for module in sorted(space.modules, key=lambda m: m.base):
        count = sum(1 for p in space.placements if space.modules[p.module] is module)
        out.write(f"# {module.name}: {module.image.path} at {module.base:#x}, {module.image.size:#x} bytes, "
                  f"{count} functions\n")
    for row in rows:
        if row["note"]:
            out.write(f"# {row['name']}: {row['note']}\n")
        out.write(f"{row['start']:0{width}x} {row['end']:0{width}x} {row['name']}\n")
