"""``tracebridge symbols``: every function of a module as the kernel linker places it."""

from __future__ import annotations

import argparse
import os
from operator import attrgetter
from collections.abc import Iterable
from typing import TYPE_CHECKING

from tracebridge.cli.common import (add_base_argument, add_format_argument, add_module_argument,
                                    add_output_argument, load_module)
from tracebridge.cli.fbt_options import add_fbt_arguments, fbt_options_from_args
from tracebridge.support.outputs import first_made, open_output
from tracebridge.image.select import add_selection_arguments, selection_from_args
from tracebridge.render.tables import FORMATS, Attribute, encode_chunk, encode_json_parts, write_chunks, write_rows

if TYPE_CHECKING:
    from tracebridge.image.elf import Function

COLUMNS = ("name", "demangled", "scheme", "section", "offset", "address", "size", "binding", "crate",
           "fbt_entry", "fbt_returns", "fbt_reason")
#: The terminal table folds the three FBT columns into one, "+0x4/2" (entry
#: offset, return sites) or the reason, in the place of the binding (almost
#: always LOCAL: kmod.mk localises every symbol but the module's entry points).
TABLE_COLUMNS = ("demangled", "scheme", "section", "offset", "address", "size", "fbt")
#: Rows are encoded in two processes at once, each half's text held whole, only while the names hold no
#: more characters than the file has bytes, and at most this many: otherwise they are encoded as they are
#: written (a hostile module's 2,000 copies of one 1 MB name are 4 GB of text from a 1 MB file).
PARALLEL_NAME_CHARS = 128 << 20
SORT_KEYS = {
    "offset": lambda row: (row["offset"], row["name"]),
    "name": lambda row: row["name"],
    "demangled": lambda row: (row["demangled"], row["name"]),
    "size": lambda row: (-row["size"], row["name"]),
}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "symbols", help="list a module's functions with kernel-linker offsets and demangled names",
        description="List every function of a kernel module (STT_FUNC and STT_GNU_IFUNC, locals included) "
                    "with its offset from the module base as FreeBSD's kernel linker lays it out, "
                    "its size, binding and rustc-demangle name, and what FreeBSD's FBT provider will make of it: "
                    "fbt_entry is the entry probe's offset from the function's start (empty: no probe), "
                    "fbt_returns the number of return sites, fbt_reason why there is no probe.")
    add_module_argument(parser)
    add_base_argument(parser)
    add_fbt_arguments(parser)
    add_selection_arguments(parser, exclude=False, regex=False)
    parser.add_argument("--sort", choices=tuple(SORT_KEYS), default="offset", help="row order (default offset)")
    add_format_argument(parser, FORMATS)
    add_output_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tracebridge.support import gcpause

    # The module's 100k functions and all made from them are in no cycle, and never freed (quickexit):
    # no collection passes over them, from reading the module on.
    with gcpause.paused():
        return _list(args)


#: A module file at least this big is listed by two processes forked before it is read
#: (:func:`~tracebridge.support.parallel.split_prepared`): one with 20k functions (the least worth two
#: processes) takes several megabytes.
EARLY_SPLIT_BYTES = 8 << 20


def _list(args: argparse.Namespace) -> int:
    from tracebridge.image.demangle import demangle_all
    from tracebridge.support.parallel import split_iter, split_map

    if _in_order(args) and not selection_from_args(args).active and _size(args.module) >= EARLY_SPLIT_BYTES:
        listing = _list_early(args)
        if listing is None:
            return 0
    else:
        listing = _Listing(args)
    image, selection, functions = listing.image, listing.selection, listing.image.functions_by_offset
    if selection.active:  # nothing selected is an error before any output (the names stay cached)
        selection.select(functions, demangle_all([f.name for f in functions]), image.filename)
    with open_output(args.output, inputs=[args.module]) as out:
        if listing.in_halves():
            # Already in order: each half is demangled, scanned and encoded in its own process, the
            # first written while the second may still be made.
            write_chunks(out, split_iter(listing.encoded, functions, cost=row_cost), listing.columns, args.format)
            return 0
        rows = split_map(listing.rows_for, functions)
        if args.sort != "offset":
            rows.sort(key=SORT_KEYS[args.sort])
        title = (f"{image.filename}: {len(rows)} functions "
                 f"({image.elf_type} {image.machine}, {image.size:#x} bytes mapped)")
        write_rows(out, rows, listing.columns, args.format, title=title, numeric=("size",),
                   hex_columns=("offset", "address"), csv_raw=args.csv_raw)
    return 0


def _list_early(args: argparse.Namespace) -> _Listing | None:
    """Rows in offset order from two processes forked before the module is read
    (:func:`~tracebridge.support.parallel.split_prepared`); None once written.  A module whose names are
    too many for a half's text to be held whole is not listed here: its listing is returned, for the
    rows to be written one at a time.

    The first part is asked for before the output is opened: a module that cannot be read is
    reported with nothing written (and with no output file made).
    """
    from tracebridge.support.parallel import Prepared, split_prepared

    listings: list[_Listing] = []

    def prepare() -> Prepared:
        listing = _Listing(args)
        listings.append(listing)  # this process's
        if not listing.in_halves():  # nothing to list here (the child is stopped): the rows go one at a time
            return Prepared(_nothing, [])
        return Prepared(listing.encoded, listing.image.functions_by_offset)

    with first_made(split_prepared(prepare, cost=row_cost)) as parts:
        if not listings[0].in_halves():
            return listings[0]
        with open_output(args.output, inputs=[args.module]) as out:
            write_chunks(out, parts, COLUMNS, args.format)
    return None


def _in_order(args: argparse.Namespace) -> bool:
    """Are the rows written in offset order as encoded rows (JSON, CSV), as the halves can give them?"""
    return args.format != "table" and args.sort == "offset"


def _nothing(functions: list[Function]) -> tuple[()]:
    """No rows, of no functions."""
    return ()


def _size(path: str) -> int:
    """The module file's size; 0 if it cannot be asked (its reader then says why)."""
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


class _Listing:
    """What one process needs to list a module's functions: the module, read; its FBT predictor; the
    columns of the output.  Each process of an early split makes its own."""

    def __init__(self, args: argparse.Namespace):
        from tracebridge.probes.fbt import Predictor
        from tracebridge.support import quickexit

        self.args = args
        self.image = image = load_module(args)
        quickexit.keep(image)  # 100k functions and their names, not to free one by one
        self.base = image.fixed_base if image.fixed_base is not None else args.base
        self.selection = selection_from_args(args)
        self.predictor = Predictor(image, image.modname, fbt_options_from_args(args, self.base))
        self.columns = COLUMNS if args.format != "table" else TABLE_COLUMNS

    def in_halves(self) -> bool:
        """Can the rows be encoded in two processes at once, in order (each half's text held whole)?"""
        image = self.image
        return _in_order(self.args) and image.name_chars <= min(len(image.data), PARALLEL_NAME_CHARS)

    def columns_for(self, functions: list[Function]) -> dict[str, list | Attribute]:
        """Each column's values, one per selected function: independent per function, so it runs in halves.

        The functions' and names' own fields are given as :class:`Attribute` columns, read where they are.
        """
        from tracebridge.image.demangle import crates_of, demangle_all, demangle_names

        selection, base = self.selection, self.base
        if selection.active:
            names = demangle_all([f.name for f in functions])
            keep = selection.apply(functions, names)
            functions = [functions[i] for i in keep]
            shown, schemes = [names[i].name for i in keep], [names[i].scheme for i in keep]
        else:  # the two columns only, without a Demangled per function
            shown, schemes = demangle_names([f.name for f in functions])
        fbts = self.predictor.scan(functions)
        values = {
            "name": Attribute(functions, "name"), "demangled": shown, "scheme": schemes,
            "section": Attribute(functions, "section"), "offset": Attribute(functions, "offset"),
            "address": [None] * len(functions) if base is None else [base + f.offset for f in functions],
            "size": Attribute(functions, "size"), "binding": Attribute(functions, "binding"),
            "crate": crates_of(shown, schemes), "fbt_entry": Attribute(fbts, "entry"),
            "fbt_returns": list(map(len, map(attrgetter("returns"), fbts))), "fbt_reason": Attribute(fbts, "reason"),
        }
        if self.args.format == "table":
            values["fbt"] = [p.reason or f"+{p.entry:#x}/{len(p.returns)}" for p in fbts]
            # rustc's per-function sections repeat the (mangled) name: say so briefly.
            values["section"] = [f.section[:-len(f.name)] + "<fn>"
                                 if f.section.endswith(f.name) and f.section != f.name else f.section
                                 for f in functions]
        return values

    def rows_for(self, functions: list[Function]) -> list[dict]:
        values = self.columns_for(functions)
        lists = [v.values() if isinstance(v, Attribute) else v for v in values.values()]
        return [dict(zip(values, row)) for row in zip(*lists)]

    def encoded(self, functions: list[Function]) -> Iterable[str | bytes]:
        if self.args.format == "json":  # in parts, each written (or left for the parent) as it is made
            values = self.columns_for(functions)
            return encode_json_parts(self.columns, [values[c] for c in self.columns])
        return [encode_chunk(self.rows_for(functions), self.columns, self.args.format, self.args.csv_raw)]


def row_cost(function: Function) -> int:
    """A function's rough share of the work of its row, to split the rows evenly over two processes.

    Tuned on librustc_driver, whose 3,780 C++ functions sit together at the
    end.  With the pure-Python C++ demangler, cut at half the rows, the second
    process worked 45 % longer than the first; a C++ weight of 8 made it 5 %.
    With LLVM's demangler for most C++ names (db665e9) that weight gave the
    first process 62 % of the rows and 25 % more CPU time than the second
    (1.0-1.1 s against 0.78-0.87 s, loaded VM); no C++ weight left the
    second 25 % more (0.87-0.97 s against 0.68-0.73 s); 4 made them equal
    (0.71-0.80 s each, 58 % of the rows in the first).  Once each process's
    work had shrunk to ~0.4 s, the second (which also imports the pure C++
    demangler and leaves its 29 MB of JSON in the shared file) took 45 ms
    more CPU time than the first with 4 (8 runs, load 1.4), 29 ms with 5 and
    6 ms with 6.
    """
    name = function.name
    return 1 + function.size // 3200 + (6 if name.startswith("_Z") and not name.endswith("E") else 0)
