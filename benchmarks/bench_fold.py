"""`tracebridge fold` against `perl stackcollapse.pl | rustfilt` on a large DTrace stack capture.

Target: tracebridge at least 3x faster (ratio <= 0.33) on a capture of 25 MB
or more.  The capture is generated: FreeBSD ``@[stack()] = count()`` output
as libdtrace prints it (a blank line, frames indented 14 spaces, the count
in 17 columns), kernel C frames and legacy/v0 mangled Rust frames of a
module, each with ``+0xOFF``.  The reference tools are not shipped with
tracebridge; name them:

    python benchmarks/bench_fold.py --stackcollapse /path/to/stackcollapse.pl \\
        [--rustfilt rustfilt] [--size-mb 25] [--repeat 3] [--keep FILE]
"""

from __future__ import annotations

import argparse
import os
import random
import shlex
import sys
import tempfile

from _timing import report, wall_time

WORDS = ("rx", "tx", "queue", "ring", "desc", "adapter", "intr", "stats", "ioctl", "regs", "phy", "eeprom",
         "dma", "mbuf", "refill", "enqueue", "dequeue", "poll", "link", "reset", "init", "handle", "walk")
KERNEL = ("ether_input", "ether_demux", "netisr_dispatch_src", "iflib_rxeof", "_task_fn_rx", "ithread_loop",
          "gtaskqueue_run_locked", "fork_exit", "intr_event_handle", "lapic_handle_intr", "spinlock_exit",
          "tcp_input", "ip_input", "sosend_generic", "kern_sendit", "amd64_syscall", "sched_idletd")


def _legacy(rng: random.Random) -> str:
    parts = ["rem"] + [rng.choice(WORDS) for _ in range(rng.randint(1, 3))]
    if rng.random() < 0.3:
        parts[-1] = "Adapter$LT$T$GT$"
    if rng.random() < 0.2:
        parts.insert(0, f"_$LT$rem..{rng.choice(WORDS)}..Queue$u20$as$u20$rem..{rng.choice(WORDS)}..Ring$GT$")
        parts.pop(1)
    parts.append(rng.choice(WORDS) + str(rng.randint(0, 99)))
    body = "".join(f"{len(p)}{p}" for p in parts)
    return f"_ZN{body}17h{rng.getrandbits(64):016x}E"


def _v0(rng: random.Random) -> str:
    path = "Cs45w9RFokUuy_3rem"
    for part in (rng.choice(WORDS) for _ in range(rng.randint(1, 2))):
        path = f"Nt{path}{len(part)}{part}"
    function = rng.choice(WORDS) + str(rng.randint(0, 99))
    return f"_RNv{path}{len(function)}{function}"


def generate(path: str, size_mb: float, seed: int = 1) -> None:
    rng = random.Random(seed)
    rust = [_legacy(rng) for _ in range(1500)] + [_v0(rng) for _ in range(500)]
    indent = " " * 14
    target = int(size_mb * 1e6)
    written = 0
    with open(path, "w") as out:
        out.write("dtrace: description 'profile-997 ' matched 1 probe\n^C\n")
        while written < target:
            frames = [f"if_rem.ko`{rng.choice(rust)}+0x{rng.randint(1, 0x400):x}"
                      for _ in range(rng.randint(2, 12))]
            frames += [f"kernel`{rng.choice(KERNEL)}+0x{rng.randint(1, 0x300):x}" for _ in range(rng.randint(3, 10))]
            if rng.random() < 0.2:
                frames.insert(0, f"0x{0xffffffff82e1c000 + rng.randint(0, 0x20000):x}")
            text = "\n" + "".join(f"{indent}{f}\n" for f in frames) + f" {rng.randint(1, 5000):16d}\n"
            out.write(text)
            written += len(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stackcollapse", required=True, help="FlameGraph's stackcollapse.pl")
    parser.add_argument("--rustfilt", default="rustfilt", help="rustfilt command (default: rustfilt)")
    parser.add_argument("--perl", default="perl", help="perl command (default: perl)")
    parser.add_argument("--tracebridge", default=os.path.join(os.path.dirname(sys.executable), "tracebridge"),
                        help="tracebridge command (default: the one next to this Python)")
    parser.add_argument("--size-mb", type=float, default=25.0, help="capture size to generate (default 25)")
    parser.add_argument("--capture", help="use this capture instead of generating one")
    parser.add_argument("--keep", metavar="FILE", help="also save the generated capture here")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        capture = args.capture
        if capture is None:
            capture = args.keep or os.path.join(tmp, "stacks.txt")
            generate(capture, args.size_mb)
        out = os.path.join(tmp, "out.folded")
        ours = wall_time([args.tracebridge, "fold", capture, "-o", out], args.repeat)
        reference_command = (f"{shlex.quote(args.perl)} {shlex.quote(args.stackcollapse)} {shlex.quote(capture)}"
                             f" | {shlex.quote(args.rustfilt)}")
        reference = wall_time(reference_command, args.repeat)
        startup = wall_time([args.tracebridge, "--version"], args.repeat)
        size = os.path.getsize(capture) / 1e6
        report(f"fold on a {size:.1f} MB DTrace stack capture", ours, reference,
               "perl stackcollapse.pl | rustfilt", "target <= 0.33x")
        print(f"  of which CLI start-up (tracebridge --version, every command registered): {startup:.3f} s")


if __name__ == "__main__":
    main()
