"""Folded stacks: the one-line-per-stack text every flame graph tool reads.

Each line is the frames root first, joined by ``;``, a space, and the
count: ``main;rem::em::rx::rxeof;rem::hw::regs::write 42``.  This module
reads them; :mod:`tracebridge.render.folded` writes them (sorted, as
stackcollapse.pl and inferno do), with the escapes defined here.

Rust names can hold ``;`` (``<[u32; 4] as RxDesc>::from_word``), which
plain folded text cannot tell from a frame boundary.  tracebridge escapes
it: inside a frame, ``\\;`` is a literal ``;`` and ``\\\\`` a literal
backslash; every other backslash is itself.  So a written file reads back
to exactly the same stacks, and folded files from other tools (which
never contain ``\\;`` or ``\\\\`` on purpose) read as they always did.
Spaces need no escape: the count is after the *last* space.  Frame names
never hold a newline (every input is line based).

Folded text holds names, not symbols: a frame that names no symbol the
reader knows and has a ``::`` path (``rem::em::rx::rxeof``) is taken as
Rust, so flame graphs and reports of folded files still set Rust apart.
A kernel has no C++; a C++ name in a user stack would be taken as Rust too.
"""

from __future__ import annotations

import re
from dataclasses import replace

from tracebridge.image.demangle import C, RUST_NAME, crate_of
from tracebridge.readers.options import Loaded, LoadOptions
from tracebridge.readers.source import Source
from tracebridge.profile.model import Frame, Metadata, Profile
from tracebridge.support.errors import excerpt

_COUNT = re.compile(r"^[0-9]{1,20}(?:\.[0-9]+)?$")  # 64-bit counts (int() refuses over 4300 digits)
_ESCAPED = re.compile(r"\\([\\;])|;")


def escape(label: str) -> str:
    if "\\" in label:
        label = label.replace("\\", "\\\\")
    if ";" in label:
        label = label.replace(";", "\\;")
    return label


def split_frames(stack: str) -> list[str]:
    """Split a folded stack at unescaped ``;`` and undo the escapes."""
    if "\\" not in stack:
        return stack.split(";")
    frames: list[str] = []
    current: list[str] = []
    position = 0
    for match in _ESCAPED.finditer(stack):
        current.append(stack[position:match.start()])
        if match.group(1) is None:  # a separator
            frames.append("".join(current))
            current = []
        else:
            current.append(match.group(1))
        position = match.end()
    current.append(stack[position:])
    frames.append("".join(current))
    return frames


def sniff(source: Source) -> bool:
    for line in source.head.split("\n"):
        if not line.strip():
            continue
        stack, space, count = line.rstrip().rpartition(" ")
        return bool(space) and bool(stack) and not line[0].isspace() and bool(_COUNT.match(count))
    return False


def read(source: Source, options: LoadOptions) -> Loaded:
    stacks: dict[tuple[str, ...], float] = {}
    for number, line in source.lines():
        if not line.strip():
            continue
        stack, space, count = line.rpartition(" ")
        if not space or not _COUNT.match(count):
            raise source.error("not a folded stack line (expected `frame;frame;... COUNT`): "
                               f"{excerpt(source.path, line.strip())}", number)
        frames = tuple(split_frames(stack))
        weight = float(count) if "." in count else int(count)
        stacks[frames] = stacks.get(frames, 0) + weight
    profile = Profile(Metadata(source=source.path))
    texts = sorted({text for frames in stacks for text in frames})  # frame ids independent of hashing
    named = dict(zip(texts, map(_rust_by_name, options.namer.frames(texts))))
    ids = {text: profile.intern(frame) for text, frame in named.items()}
    for frames, weight in stacks.items():
        profile.add_ids(tuple(ids[t] for t in frames), weight)
    return Loaded(profile)


def _rust_by_name(frame: Frame) -> Frame:
    """``frame``, taken as Rust when it is a C name with a ``::`` path (see the module's docstring)."""
    if frame.scheme != C or "::" not in frame.name:
        return frame
    return replace(frame, scheme=RUST_NAME, crate=crate_of(frame.name))
