"""Put real PCs into the FreeBSD ``stack()`` captures of this directory (run from the repository root).

    python tests/data/dtrace/make_freebsd_captures.py           # rewrite them
    python tests/data/dtrace/make_freebsd_captures.py --check   # exit 1 if one would change

``freebsd-stack-hex.txt``, ``freebsd-traced-header.txt``,
``freebsd-traced-arg0.txt`` and ``freebsd-hex-only.txt`` are printed as
libdtrace prints ``stack()`` on FreeBSD (freebsd-facts.md section 5), over
``rem_legacy_fp.ko`` loaded as ``if_rem.ko`` at ``BASE``.  Their stacks,
counts and kernel frames are made up; the module's addresses are real: each
is moved to the nearest PC of the same function that the capture of a real
run could hold, from GNU objdump's listing of the module and readelf's
layout (tests/real_pcs.py):

* a leaf (a stack's first frame) onto the start of an instruction;
* a caller onto a return address, the byte after a call instruction (in
  the nearest function that calls, when the made-up one calls nothing).

So the tests that name these frames still find the names readelf gives
their addresses, and joining the
captures to the module trips no consistency warning.  Idempotent: real PCs
stay where they are.

``freebsd-quiet-arg0.txt`` is made from it: the same firings as ``dtrace -q`` prints
them.  Quiet, ``dt_consume_cpu`` prints no probe line and ``trace(arg0)`` as
``"%lld"`` (at column 0, where an aggregation's count is ``" %16lld"``), and
``chewrec`` no newline at a firing's end: the next stack's newline ends the
value's line.

``freebsd-traced-arg0.txt`` is ``dtrace -n 'profile-997 /arg0/ { stack(); trace(arg0); }'``:
``dt_consume_cpu`` prints each firing's probe line, the stack (``dt_print_stack``:
a newline, then the frames), then ``arg0`` as ``" %16lld"``, and dtrace(1)'s
``chewrec`` ends the firing with one newline, so no blank line follows the
number.  A profile probe's ``arg0`` is the interrupted kernel PC, the stack's
leaf, printed signed; it is kept equal to the leaf where that is a hex address.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parents[1]))

import real_pcs  # noqa: E402

MODULE = "rem_legacy_fp"
#: Where the captures' machine loaded the module (if_rem.ko).
BASE = 0xFFFFFFFF82E1C000
CAPTURES = ("freebsd-stack-hex.txt", "freebsd-traced-header.txt", "freebsd-traced-arg0.txt",
            "freebsd-hex-only.txt")
#: Captures whose firings trace ``arg0`` (the leaf PC) after the stack.
TRACED_PC = ("freebsd-traced-arg0.txt",)
_FRAME = re.compile(r"^( {14})((?:if_rem\.ko`)?)0x([0-9a-f]+)$")
_STACK_LINE = re.compile(r"^ {14}\S")
_TRACED_NUMBER = re.compile(r"^ +-?\d+$")
#: Made from the first capture (after its PCs are real), as dtrace -q prints the same firings.
QUIET = ("freebsd-traced-arg0.txt", "freebsd-quiet-arg0.txt")


def real(address: int, leaf: bool) -> int:
    """The PC of the same function a real capture could hold in that role.

    A caller frame in a function that calls nothing moves to the nearest function that calls.
    """
    functions = real_pcs.functions(MODULE)
    offset = address - BASE
    code = next((c for start, c in functions.items() if start <= offset < start + max(c.size, 1)), None)
    if code is None:
        return address  # outside the module's functions: left as it is
    if leaf:
        return BASE + code.leaf(offset)
    if code.caller(offset) is None:
        code = min((c for c in functions.values() if c.caller(offset) is not None),
                   key=lambda c: abs(c.start - offset))
    return BASE + code.caller(offset)


def rewrite(text: str, traced_pc: bool = False) -> str:
    """``traced_pc``: a number after a stack is ``trace(arg0)`` of a profile probe, the leaf PC."""
    lines = text.split("\n")
    first = True  # the next stack line is a leaf
    leaf = None  # the PC of the last stack's leaf, when printed in hex
    for index, line in enumerate(lines):
        frame = _FRAME.match(line)
        if frame is not None:
            pc = real(int(frame[3], 16), first)
            lines[index] = f"{frame[1]}{frame[2]}{pc:#x}"
            leaf = pc if first else leaf
        elif first and _STACK_LINE.match(line):
            leaf = None
        if traced_pc and leaf is not None and _TRACED_NUMBER.match(line):
            lines[index] = " %16d" % (leaf - (1 << 64))  # "%16lld" of the 64-bit PC
        first = not _STACK_LINE.match(line) or line.strip().isdigit()
    return "\n".join(lines)


def quiet(text: str) -> str:
    """The firings of a traced capture as ``dtrace -q`` prints them: no header, no probe lines, each
    stack (a newline, then the frames) followed by its traced value printed ``"%lld"``."""
    firings = []
    for line in text.split("\n"):
        if line.startswith(" " * 14):
            firings[-1].append(line)
        elif _TRACED_NUMBER.match(line):
            firings[-1].append(line.strip())
        elif line.strip() and not line.startswith("CPU"):  # a probe line: the next firing
            firings.append([])
    return "".join("\n" + "\n".join(firing) for firing in firings)


def main(argv: list[str]) -> int:
    stale = []
    made = {}
    for name in CAPTURES:
        made[name] = rewrite((HERE / name).read_text(), name in TRACED_PC)
    made[QUIET[1]] = quiet(made[QUIET[0]])
    for name, new in made.items():
        path = HERE / name
        if not path.exists() or new != path.read_text():
            stale.append(name)
            if "--check" not in argv:
                path.write_text(new)
    if stale:
        print(("stale: " if "--check" in argv else "rewrote: ") + ", ".join(stale))
    return 1 if stale and "--check" in argv else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
