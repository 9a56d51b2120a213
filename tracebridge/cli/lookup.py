"""``tracebridge lookup``: module addresses to their inline chains and source lines (``addr2line -i`` for a .ko)."""

from __future__ import annotations

import argparse
import bisect
import json
from typing import TYPE_CHECKING

from tracebridge.cli.common import add_base_argument, add_module_argument, add_output_argument, load_module
from tracebridge.support.errors import UsageError, warn
from tracebridge.support.outputs import open_output

if TYPE_CHECKING:
    from tracebridge.image.elf import ModuleImage


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "lookup", help="show the inline chain and source line of module addresses (addr2line -i for a .ko)",
        description="For each address, the chain of functions at it, innermost first: inlined copies out to "
                    "the function holding them, each with its file and line, as addr2line -i gives for a "
                    "program (the innermost frame's line from the line table, each outer frame's from its "
                    "call site). DWARF is read from --debug FILE, else NAME.ko.debug or NAME.ko.full beside "
                    "the module, else /usr/lib/debug/<module's directory>/NAME.ko.debug, else the module "
                    "itself; its relocations are applied with the kernel-linker layout, so addresses are "
                    "module offsets as symbols shows them. Without DWARF only the symbol frame is given.")
    add_module_argument(parser)
    parser.add_argument("addresses", nargs="+", metavar="ADDRESS",
                        help="a module offset (hex), a run-time address with --base, or SYMBOL+0xOFF "
                             "(mangled or demangled name)")
    add_base_argument(parser)
    parser.add_argument("--debug", metavar="FILE", help="the module's debug file (NAME.ko.debug or NAME.ko.full)")
    parser.add_argument("--format", "-f", choices=("text", "json"), default="text",
                        help="output format (default text)")
    add_output_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tracebridge.image.dwarf import Frame, module_index

    image = load_module(args)
    offsets = [parse_location(image, text, args.base) for text in args.addresses]
    index, searched = module_index(image, args.debug)
    if index is None:
        warn(f"no DWARF found for {image.path} (looked in {', '.join(searched)}): symbol frames only")
    symbols = _SymbolFrames(image)
    chains = index.frames_many(offsets) if index is not None else [[] for _ in offsets]
    results = []
    for offset, chain in zip(offsets, chains):
        if not chain:
            name = symbols.at(offset)
            chain = [Frame(name, None, None, False)] if name is not None else []
        results.append({"address": offset, "frames": [
            {"function": f.function, "file": f.file, "line": f.line, "inlined": f.inlined} for f in chain]})
    with open_output(args.output, inputs=[args.module]) as out:
        if args.format == "json":
            json.dump(results, out, indent=1)
            out.write("\n")
        else:
            for result in results:
                out.write(f"{result['address']:#x}\n")
                if not result["frames"]:
                    out.write("  ?? (outside every function)\n")
                for frame in result["frames"]:
                    where = f"{frame['file'] or '??'}:{frame['line'] if frame['line'] else '?'}"
                    out.write(f"  {frame['function']} at {where}{' (inlined)' if frame['inlined'] else ''}\n")
    return 0


def parse_location(image: ModuleImage, text: str, base: int | None) -> int:
    """A module offset from ``0x1a0``, ``SYMBOL+0x10`` or (with ``base``) a run-time address."""
    name, plus, offset_text = text.rpartition("+")
    if plus and name:
        try:
            offset = int(offset_text, 16)
        except ValueError:
            raise UsageError(f"{text}: the offset after '+' is not hex") from None
        return _symbol_offset(image, name) + offset
    try:
        value = int(text, 16)
    except ValueError:
        return _symbol_offset(image, text)
    if base is not None:
        if value < base:
            raise UsageError(f"{text}: address below the module base {base:#x}")
        value -= base
    if value >= image.size:
        raise UsageError(f"{text}: offset {value:#x} is past the end of {image.filename} ({image.size:#x} bytes)")
    return value


def _symbol_offset(image: ModuleImage, name: str) -> int:
    from tracebridge.image.demangle import demangle_symbol

    exact = [f for f in image.functions if f.name == name]
    if not exact:
        exact = [f for f in image.functions if demangle_symbol(f.name).name == name]
    offsets = sorted({f.offset for f in exact})
    if not offsets:
        raise UsageError(f"{name}: no such function in {image.filename}")
    if len(offsets) > 1:
        raise UsageError(f"{name}: {len(offsets)} functions of {image.filename} have this name; "
                         "give the mangled name")
    return offsets[0]


class _SymbolFrames:
    """The function symbol holding an offset, for addresses DWARF does not cover."""

    def __init__(self, image: ModuleImage):
        from tracebridge.image.demangle import demangle_symbol

        self._functions = [f for f in image.functions_by_offset if f.size]
        self._starts = [f.offset for f in self._functions]
        self._demangle = demangle_symbol

    def at(self, offset: int) -> str | None:
        i = bisect.bisect_right(self._starts, offset) - 1
        if i >= 0 and offset < self._functions[i].offset + self._functions[i].size:
            return self._demangle(self._functions[i].name).name
        return None
