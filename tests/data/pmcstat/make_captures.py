"""Write the ``pmcstat -G`` captures of this directory (run from the repository root).

    python tests/data/pmcstat/make_captures.py

The callgraphs are printed in pmcstat's exact format (tests/readers/pmcstat_text.py)
from made-up callchains over three images: the stand-in kernel of this
directory, ``rem_legacy_fp.ko`` (a per-function-section Rust module, named
by its mangled symbols as pmcstat prints them, or by the hex offsets pmcstat
prints when its symbol search fails) and ``if_em.ko`` (no ELF file: its
nodes stay hex).  ``malformed.graph`` is the same capture with lines broken
the ways hand-edited or truncated files break.  ``edges.graph`` is written
line by line (see :data:`EDGES`): lines at the edges of stackcollapse-pmc.pl's
pattern, and node names pmcstat can print that look almost like addresses.
The ``*.perl.folded`` files are the real ``stackcollapse-pmc.pl``'s output on
each capture:

    perl stackcollapse-pmc.pl multi-image.graph > multi-image.perl.folded
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parents[1] / "readers"))

from pmcstat_text import callgraph  # noqa: E402

KERNEL = "/boot/kernel/kernel"
REM = "/boot/modules/rem_legacy_fp.ko"
EM = "/boot/kernel/if_em.ko"

RXEOF = "_ZN3rem2em2rx5rxeof17h84684ba9222bcdc9E"
RX_FRAME = "_ZN3rem2em2rx16Adapter$LT$T$GT$8rx_frame17h183ba40ea4476ec7E"
REFILL = "_ZN3rem2em2rx16Adapter$LT$T$GT$6refill17hc15f6da71de9a8caE"
TRANSMIT = "_ZN3rem2em2tx8transmit17hbb2a20c64cd9deefE"
# Offsets from rem_legacy_fp.ko's base that pmcstat could not name (inside
# txeof, rx_frame#he7de and rem_intr under the kernel linker's layout).
REM_HEX_TXEOF, REM_HEX_RXFRAME, REM_HEX_INTR = "0xcf8", "0x870", "0x1d10"
KERNEL_HEX = "0xffffffff80200120"   # inside ether_input of the stand-in kernel


def k(name: str) -> tuple[str, str]:
    return (name, KERNEL)


def rem(name: str) -> tuple[str, str]:
    return (name, REM)


def em(name: str) -> tuple[str, str]:
    return (name, EM)


CYCLES = [
    # leaf in the kernel, called from the module, called from the kernel: two image switches
    ([k("__mtx_unlock_flags"), rem(RX_FRAME), rem(RXEOF), k("ether_input"), k("taskqueue_run"), k("fork_exit")], 40),
    ([k("__mtx_unlock_flags"), k("witness_unlock"), k("kern_ioctl"), k("sys_ioctl"), k("amd64_syscall")], 17),
    ([rem(RX_FRAME), rem(RXEOF), k("ether_input"), k("taskqueue_run"), k("fork_exit")], 25),
    ([rem(REM_HEX_RXFRAME), rem(RXEOF), k(KERNEL_HEX), k("taskqueue_run"), k("fork_exit")], 9),
    ([rem(REM_HEX_TXEOF), rem(TRANSMIT), em("0x1a2b0"), em("0x18000"), k("fork_exit")], 6),
    ([rem(REFILL), rem(REM_HEX_INTR), k("taskqueue_run"), k("fork_exit")], 5),
    ([em("0x19f00"), k("ether_input"), k("taskqueue_run")], 3),
    ([k("witness_unlock"), k("kern_ioctl"), k("sys_ioctl"), k("amd64_syscall")], 2),
    ([k("witness_unlock"), k("ether_input"), k("taskqueue_run"), k("fork_exit")], 1),
]
INSTRUCTIONS = [
    ([rem(RXEOF), k("ether_input"), k("taskqueue_run"), k("fork_exit")], 12),
    ([k("btext")], 4),
    ([rem(REM_HEX_TXEOF), rem(TRANSMIT), k("kern_ioctl")], 3),
]


def malformed(text: str) -> str:
    """Break lines the ways hand-edited or cut captures break (line numbers are 1-based)."""
    lines = text.split("\n")
    lines[4 - 1] = lines[4 - 1].replace("[40]", "[4O]")       # bad count, at a depth first seen here
    lines[9 - 1] = lines[9 - 1].replace("%", "#", 1)          # bad percentage
    lines[14 - 1] = lines[14 - 1].split("]")[0] + "]      "   # no function name (nor image)
    lines[20 - 1] = lines[20 - 1][:6]                         # cut short
    lines.insert(25, "### pmcstat: WARNING: some samples were dropped")  # garbage between trees
    return "\n".join(lines)


#: Lines of edges.graph, each with why it is there.  It starts with a tree
#: line (a capture cut by ``tail``), so its first stack belongs to no PMC.
EDGES = [
    (b"100.0%  [3]        first_line @ /boot/kernel/kernel", "the file's first line is a tree line"),
    (b" 100.0%  [3]         first_caller", "and the second a different one"),
    (b"@ cycles [52 samples]", "a header"),
    (b"", ""),
    (b"11111111111111111111%  [2]  long_percentage", "a 20-digit percentage: read"),
    (b" 100.0%  [2]   " + RXEOF.encode(), "a Rust name"),
    (b"123456789%  [1]  nine_digits", "9 bytes: past the 8 read at once"),
    (b"12345678x%  [1]  ninth_byte_bad", "skipped: its 9th byte is no digit"),
    (b"1234567.9x123%  [1]  bad_in_the_middle", "skipped"),
    (b"11111111111111111111111111111111%  [1]  thirty_two", "32 bytes, the longest read"),
    (b"1X.0%  [1]  letter_in_percentage", "skipped"),
    (b".%  [4]  dot_only", "[0-9.]+ takes a lone dot"),
    (b" 50.00%  []  empty_count", "skipped: no digits"),
    (b" 50.00%  [1:]  colon_in_count", "skipped: ':' follows '9' in ASCII"),
    (b" 50.00%  [/1]  slash_in_count", "skipped: '/' precedes '0'"),
    (b"1/0%  [1]  slash_in_percentage", "skipped"),
    (b" 50.00%  [2]  two_callers", ""),
    (b"  100.0%  [2]  0x1F @ /boot/modules/rem_legacy_fp.ko", "upper-case hex: an offset in the module"),
    (b"   100.0%  [2]  0xzz", "0x then no hex digits: a name"),
    (b" 50.00%  [2]  0x00000000000000870", "17 hex digits: too long for an address, a name"),
    (b"  100.0%  [2]  0X870", "0X: a name"),
    (b"0%  [999999999999999999]  largest_count @ /boot/kernel/kernel", "18 digits"),
    (b"100.0%  [1]  root_again", ""),
    (b"  100.0%  [1]  two_deeper", "two levels deeper: level 1 is what the last line there left"),
    (b"100.0%  [1]]  extra_bracket", "the name is ']'"),
    (b"100.0%  [1]name_glued", "no space between ']' and the name"),
    (b"100.0%  [1]  name_only_here   ", "spaces after the name"),
    (b"100.0%  [1]  unit_sep\x1finside", "\\x1c to \\x1f are no white space to perl: part of the name "
     "(Python's str.split() takes them for white space)"),
    (b"100.0%  [5]  spaced_image @ /boot/modules/dir with spaces/x.ko", "the path runs to the line's end"),
    (b" 100.0%  [5]  same_image", "inherits that path"),
    (b"  100.0%  [5]  two_spaces  @ /boot/kernel/kernel", "not ' @ ': no image change"),
    (b"   100.0%  [5]  at_then_nothing @ ", "' @ ' and no path: no image change"),
    (b"    100.0%  [5]  0x2a", "still in x.ko (no ELF given: stays an offset)"),
    (b"      100.0%  [5]  six_deep", "level 5 was never filled: an empty frame"),
    (b"@ instructions [7 samples]", ""),
    (b"", ""),
    (b"@cycles not a header", "skipped"),
    (b"100.0%  [7]  0xffffffff80200120 @ /boot/kernel/kernel", "a kernel address"),
    (b" 100.0%  [7]  0x870 @ /boot/modules/rem_legacy_fp.ko", "a module offset"),
    (b"  100.0%  [7]  0x0 @ /boot/modules/rem_legacy_fp.ko", "offset 0"),
    (b"@ a header without a sample count", "its whole text is the event"),
    (b"100.0%  [6]  last_tree", ""),
    (b" 100.0%  [6]  last_caller", "the file's last line: a leaf at the end"),
]

#: Lines with white space other than spaces and newlines, and bytes that are not UTF-8, for
#: edges-controls.graph (EDGES and these, each ending in "\r\n"); perl's \s is [\t\n\x0b\f\r ].
CONTROLS = [
    (b"100.0%  [1]\tafter_a_tab", "a tab between ']' and the name"),
    (b"100.0%  [1]\x0bafter_a_vertical_tab", ""),
    (b"100.0%  [1]  \x0eshift_out", "\\x0e is no white space: part of the name"),
    (b"100.0%  [1]  soh\x01inside", "nor \\x01 (a NUL byte would make the file binary)"),
    (b"100.0%  [1]  latin1_\xa0_\x85_nbsp_nel", "nor \\xa0 or \\x85 in a byte string"),
    (b"100.0%  [1]  not_utf8_\xff @ /boot/modules/\xe9t\xe9.ko", "bytes that are not UTF-8"),
    (b" \t100.0%  [1]  tab_in_indentation", "skipped: the indentation is spaces only"),
    (b"\x0c100.0%  [1]  form_feed_first", "skipped"),
    (b"100.0%  [2]  end", ""),
]

def main() -> None:
    text = callgraph([("cpu_clk_unhalted.thread_p", CYCLES), ("inst_retired.any", INSTRUCTIONS)])
    (HERE / "multi-image.graph").write_text(text)
    (HERE / "malformed.graph").write_text(malformed(text))
    (HERE / "edges.graph").write_bytes(b"".join(line + b"\n" for line, _ in EDGES))
    (HERE / "edges-controls.graph").write_bytes(b"".join(line + b"\r\n" for line, _ in EDGES + CONTROLS))


if __name__ == "__main__":
    main()
