"""Write the ``pmcstat -G`` captures of this directory (run from the repository root).

    python tests/data/pmcstat/make_captures.py

The callgraphs are printed in pmcstat's exact format (tests/readers/pmcstat_text.py)
from made-up callchains over three images: the stand-in kernel of this
directory, ``rem_legacy_fp.ko`` (a per-function-section Rust module, named
by its mangled symbols as pmcstat prints them, or by the hex offsets pmcstat
prints when its symbol search fails) and ``if_em.ko`` (no ELF file: its
nodes stay hex).  ``malformed.graph`` is the same capture with lines broken
the ways hand-edited or truncated files break.  The ``*.perl.folded`` files
are the real ``stackcollapse-pmc.pl``'s output on each capture:

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


def main() -> None:
    text = callgraph([("cpu_clk_unhalted.thread_p", CYCLES), ("inst_retired.any", INSTRUCTIONS)])
    (HERE / "multi-image.graph").write_text(text)
    (HERE / "malformed.graph").write_text(malformed(text))


if __name__ == "__main__":
    main()
