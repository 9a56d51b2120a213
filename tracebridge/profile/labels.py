"""How a frame is written in text outputs (folded stacks, speedscope, tables).

One place decides between the demangled name (what people read, and what
rustfilt prints), the mangled symbol (``--no-demangle``), the name with
rustc-demangle's hash (``--hash``, to tell generic instances apart) and an
``+0xOFF`` suffix (``--include-offset``, as stackcollapse.pl's option).
Inlined frames (``--inline``) end in FlameGraph's ``_[i]`` annotation, which
flamegraph.pl and inferno colour as inlined.
"""

from __future__ import annotations

from dataclasses import dataclass

from tracebridge.image.demangle import demangle_symbol
from tracebridge.profile.model import Frame, Profile


#: FlameGraph's annotation of an inlined frame (stackcollapse-perf.pl --inline, flamegraph.pl's colours).
INLINED_SUFFIX = "_[i]"


@dataclass(frozen=True)
class LabelOptions:
    include_offset: bool = False
    demangle: bool = True
    hash: bool = False

    def label(self, frame: Frame) -> str:
        if not frame.resolved:
            return frame.name
        if not self.demangle:
            text = frame.symbol
        elif self.hash and frame.is_rust:
            text = demangle_symbol(frame.symbol).full
        else:
            text = frame.name
        if self.include_offset and frame.offset:
            text = f"{text}+0x{frame.offset:x}"
        if frame.inlined:
            text += INLINED_SUFFIX
        return text

    def labels(self, profile: Profile) -> list[str]:
        """One label per frame id of ``profile``."""
        if self.demangle and not self.hash:  # then a symbol frame's label is its name: no need to build it
            return profile.frame_labels(self.label)
        return [self.label(frame) for frame in profile.frames]


def add_label_arguments(parser) -> None:
    parser.add_argument("--include-offset", action="store_true",
                        help="keep each frame's +0xOFF offset (frames at different offsets stay apart)")
    parser.add_argument("--no-demangle", dest="demangle", action="store_false",
                        help="write symbols as mangled in the module instead of rustc-demangle names")
    parser.add_argument("--hash", action="store_true",
                        help="keep rustc-demangle's hash (::h0123...) on legacy Rust names")


def label_options_from_args(args) -> LabelOptions:
    return LabelOptions(include_offset=args.include_offset, demangle=args.demangle, hash=args.hash)
