"""Write the example captures in examples/ from the real layout of examples/if_rem.ko.

The captures are SYNTHETIC: made here for the documentation, not taken on a
FreeBSD machine.  What is true in them comes from the module itself:

* every address inside if_rem.ko is ``BASE`` + an offset the kernel linker
  gives it (read with tracebridge's module image, which follows
  ``sys/kern/link_elf_obj.c``);
* every caller frame is a real return address: the byte after a ``call``
  instruction of the caller whose relocation targets the callee (read from
  the module's ``.rela.text.*`` sections with pyelftools), so the stacks
  follow the module's real call graph;
* every leaf PC is the start of a real instruction of the leaf function
  (decoded with iced-x86).

What is invented: the kernel's function offsets, the load address, the
sample counts, the C driver ``if_em.ko`` (its functions are named after the
pre-iflib em(4) driver) and the ``top`` numbers.  The printing follows
FreeBSD's formats exactly (libdtrace's ``stack()`` and aggregation printers,
``kldstat -v``, ``top -bzSHCP``, ``pmcstat -R -o``): see
/work/shared/docs/freebsd-facts.md sections 5 and 6, docs/formats.md.

    python examples/make_examples.py           # rewrite the captures
    python examples/make_examples.py --check   # exit 1 if one differs

Deterministic: the same module gives the same bytes.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import iced_x86
from elftools.elf.elffile import ELFFile
from elftools.elf.relocation import RelocationSection

from tracebridge.image.demangle import demangle_symbol
from tracebridge.image.elf import open_module

HERE = Path(__file__).resolve().parent
MODULE = HERE / "if_rem.ko"
#: Where the synthetic kernel loaded if_rem.ko (kldstat's Address column).
BASE = 0xFFFFFFFF82A1C000
KERNEL_BASE, KERNEL_SIZE = 0xFFFFFFFF80200000, 0x1F3E2C8
#: fork_trampoline: an assembler entry without a symbol size, so DTrace prints it bare.
FORK_TRAMPOLINE = "kernel`0xffffffff8104e10e"
R_X86_64_PC32, R_X86_64_PLT32 = 2, 4
CALL_REL32 = 0xE8
STACK_INDENT = " " * 14


# -- the module's real layout and call graph ---------------------------------------------------------------


class Layout:
    def __init__(self, path: Path):
        self.image = open_module(path)
        self.functions = self.image.functions_by_offset
        self.by_name = {f.name: f for f in self.functions}
        self.calls = self._call_sites(path)

    def function_at(self, offset: int):
        for function in self.functions:
            if function.offset <= offset < function.offset + max(function.size, 1):
                return function
        return None

    def _call_sites(self, path: Path) -> dict[str, list[tuple[str, int]]]:
        """caller symbol -> [(callee symbol, return address offset)], in code order."""
        offsets = {s.index: s.load_offset for s in self.image.sections}
        calls: dict[str, list[tuple[str, int]]] = {}
        with open(path, "rb") as handle:
            elf = ELFFile(handle)
            symtab = elf.get_section_by_name(".symtab")
            for section in elf.iter_sections():
                if not isinstance(section, RelocationSection):
                    continue
                target = section["sh_info"]
                if offsets.get(target) is None:
                    continue
                code = elf.get_section(target).data()
                for reloc in section.iter_relocations():
                    where = reloc["r_offset"]
                    if reloc["r_info_type"] not in (R_X86_64_PC32, R_X86_64_PLT32) or code[where - 1] != CALL_REL32:
                        continue
                    symbol = symtab.get_symbol(reloc["r_info_sym"])
                    if symbol["st_info"]["type"] == "STT_SECTION":
                        callee = self.function_at(offsets[symbol["st_shndx"]] + reloc["r_addend"] + 4)
                        callee_name = callee.name if callee else None
                    else:
                        callee_name = symbol.name
                    caller = self.function_at(offsets[target] + where)
                    if caller is not None and callee_name is not None:
                        calls.setdefault(caller.name, []).append((callee_name, offsets[target] + where + 4))
        for sites in calls.values():
            sites.sort(key=lambda site: site[1])
        return calls

    def instruction_starts(self, function) -> list[int]:
        """Offsets (from the module base) of the function's instructions, after the first."""
        code = bytes(self.image.code(function))
        decoder = iced_x86.Decoder(64, code, ip=function.offset)
        starts = [instruction.ip for instruction in decoder if not instruction.is_invalid]
        return starts[1:] or starts

    def path_pcs(self, steps: list) -> list[int]:
        """PCs, leaf first, for a call path root -> leaf given as demangled names.

        A step may be ``(name, n)``: the n-th call site of the caller that
        reaches a function of that name (generic instances share a name).
        """
        names = [step if isinstance(step, str) else step[0] for step in steps]
        choice = [0 if isinstance(step, str) else step[1] for step in steps]
        root = [f for f in self.functions if demangle_symbol(f.name).name == names[0]]
        if len(root) != 1:
            raise SystemExit(f"make_examples: {names[0]!r} names {len(root)} functions")
        current = root[0].name
        pcs = []
        for name, n in zip(names[1:], choice[1:]):
            sites = [(callee, ra) for callee, ra in self.calls.get(current, ())
                     if demangle_symbol(callee).name == name]
            if len(sites) <= n:
                raise SystemExit(f"make_examples: {demangle_symbol(current).name} has no call #{n} to {name}")
            callee, return_address = sites[n]
            pcs.append(BASE + return_address)
            current = callee
        return pcs, self.by_name[current]


# -- the synthetic workload: where if_rem spends its time under iperf3 -------------------------------------

RX = "rem::em::rx::rxeof"
RX_FRAME = "rem::em::rx::Adapter<T>::rx_frame"
NEW = "rem::em::rx::Adapter<T>::new"
LEGACY, EXTENDED, RAW = ("<rem::em::rx::LegacyDesc as rem::em::rx::RxDesc>",
                         "<rem::em::rx::ExtendedDesc as rem::em::rx::RxDesc>",
                         "<[u32; 4] as rem::em::rx::RxDesc>")
INTERRUPT = ["kernel`intr_event_execute_handlers+0x99", "kernel`ithread_loop+0x1a6", "kernel`fork_exit+0x80",
             FORK_TRAMPOLINE]
TRANSMIT = ["kernel`ether_output_frame+0x9c", "kernel`ether_output+0x6a2", "kernel`ip_output+0x14b5",
            "kernel`tcp_default_output+0x1d28", "kernel`tcp_usr_send+0x4e4", "kernel`sosend_generic+0x5fe",
            "kernel`soo_write+0x42", "kernel`dofilewrite+0x88", "kernel`sys_write+0xc1",
            "kernel`amd64_syscall+0x158", "kernel`fast_syscall_common+0x101"]
IOCTL = ["kernel`ifioctl+0x9e2", "kernel`kern_ioctl+0x26d", "kernel`sys_ioctl+0x15d", "kernel`amd64_syscall+0x158",
         "kernel`fast_syscall_common+0x101"]

#: (callers in the kernel, leaf first; path in the module, root first; samples)
REM_PATHS = [
    (INTERRUPT, ["rem_intr", RX, (RX_FRAME, 0), LEGACY + "::status"], 611),
    (INTERRUPT, ["rem_intr", RX, (RX_FRAME, 0), LEGACY + "::length"], 344),
    (INTERRUPT, ["rem_intr", RX, (RX_FRAME, 0)], 905),
    (INTERRUPT, ["rem_intr", RX, (RX_FRAME, 1), EXTENDED + "::status"], 298),
    (INTERRUPT, ["rem_intr", RX, (RX_FRAME, 1)], 472),
    (INTERRUPT, ["rem_intr", RX, (RX_FRAME, 2), RAW + "::status"], 187),
    (INTERRUPT, ["rem_intr", RX, (RX_FRAME, 2)], 263),
    (INTERRUPT, ["rem_intr", RX, (NEW, 0), LEGACY + "::from_word"], 402),
    (INTERRUPT, ["rem_intr", RX, (NEW, 1), EXTENDED + "::from_word"], 221),
    (INTERRUPT, ["rem_intr", RX, (NEW, 2), RAW + "::from_word"], 139),
    (INTERRUPT, ["rem_intr", RX, (NEW, 0)], 96),
    (INTERRUPT, ["rem_intr", RX], 118),
    (INTERRUPT, ["rem_intr", "rem::em::tx::txeof"], 131),
    (INTERRUPT, ["rem_intr", "rem::hw::intr::decode", "rem::hw::intr::on_rx"], 57),
    (INTERRUPT, ["rem_intr", "rem::hw::intr::decode"], 44),
    (INTERRUPT, ["rem_intr", "rem::hw::regs::read", "rem::hw::regs::RegisterBank::shadow_slot"], 83),
    (INTERRUPT, ["rem_intr", "rem::hw::regs::write", "rem::hw::regs::RegisterBank::shadow_slot"], 71),
    (INTERRUPT, ["rem_intr"], 39),
    (TRANSMIT, ["rem_transmit", "rem::em::tx::transmit", "rem::em::tx::pick_queue"], 164),
    (TRANSMIT, ["rem_transmit", "rem::em::tx::transmit"], 352),
    (TRANSMIT, ["rem_transmit"], 28),
    (IOCTL, ["rem_ioctl", "rem::em::ioctl::dispatch", "rem::em::ioctl::set_flags"], 3),
]

#: The C driver the Rust port replaces, as libdtrace prints a C module (every frame named).
EM_PATHS = [
    (INTERRUPT, ["em_msix_rx+0x3b", "em_rxeof+0x2d1", "em_refresh_mbufs+0x9a"], 702),
    (INTERRUPT, ["em_msix_rx+0x3b", "em_rxeof+0x1c5", "kernel`m_getjcl+0x4e"], 355),
    (INTERRUPT, ["em_msix_rx+0x3b", "em_rxeof+0x3f0"], 1630),
    (INTERRUPT, ["em_msix_rx+0x3b", "em_rxeof+0x112", "em_fixup_rx+0x27"], 188),
    (INTERRUPT, ["em_msix_rx+0x3b", "em_txeof+0x8c"], 240),
    (INTERRUPT, ["em_msix_rx+0x20"], 61),
    (TRANSMIT, ["em_mq_start+0x1a8", "em_xmit+0x2b4"], 691),
    (TRANSMIT, ["em_mq_start+0x1a8", "em_xmit+0x2b4", "kernel`bus_dmamap_load_mbuf_sg+0x5c"], 233),
    (TRANSMIT, ["em_mq_start+0x77"], 84),
    (IOCTL, ["em_ioctl+0x3d1", "em_init_locked+0x16e"], 5),
]


def _entry(frames: list[str], count: int) -> str:
    """One ``@[stack()] = count()`` entry as libdtrace prints it: blank line, frames, `` %16lld``."""
    return "\n" + "".join(STACK_INDENT + frame + "\n" for frame in frames) + f" {count:16d}\n"


def _aggregation(entries: list[tuple[list[str], int]]) -> str:
    """dtrace -o output of the stack template after Ctrl-C: least frequent first."""
    body = "".join(_entry(frames, count) for frames, count in sorted(entries, key=lambda e: (e[1], e[0])))
    return "\n\n" + body + "\n"


def rem_stacks(layout: Layout) -> list[tuple[list[str], int, list]]:
    """(frames leaf first, count, [module function per frame]) for if_rem.ko, leaf PCs spread over 1-3 spots."""
    rng = random.Random(20261129)
    out = []
    for kernel, steps, samples in REM_PATHS:
        callers, leaf = layout.path_pcs(steps)
        spots = layout.instruction_starts(leaf)
        chosen = sorted(rng.sample(spots, min(len(spots), rng.randint(1, 3))))
        shares = _split(samples, len(chosen), rng)
        for pc, share in zip(chosen, shares):
            module_pcs = [BASE + pc] + callers[::-1]
            frames = [f"{p:#x}" for p in module_pcs] + kernel
            out.append((frames, share, module_pcs))
    return out


def _split(total: int, parts: int, rng: random.Random) -> list[int]:
    if parts == 1:
        return [total]
    cuts = sorted(rng.sample(range(1, total), parts - 1))
    return [b - a for a, b in zip([0, *cuts], [*cuts, total])]


def em_stacks() -> list[tuple[list[str], int]]:
    out = []
    for kernel, frames, samples in EM_PATHS:
        named = [f if f.startswith("kernel`") else f"if_em.ko`{f}" for f in frames]
        out.append((named[::-1] + kernel, samples))
    return out


# -- kldstat -v ---------------------------------------------------------------------------------------------


def kldstat(layout: Layout) -> str:
    """``kldstat -v`` as sbin/kldstat/kldstat.c prints it on amd64 (trimmed module lists)."""
    files = [
        (1, 38, KERNEL_BASE, KERNEL_SIZE, "kernel", "/boot/kernel/kernel",
         [(1, "elf64"), (2, "shell"), (3, "pseudofs"), (18, "if_lo"), (45, "ether")]),
        (2, 1, 0xFFFFFFFF82200000, 0x3538, "dtraceall.ko", "/boot/kernel/dtraceall.ko", [(411, "dtraceall")]),
        (3, 9, 0xFFFFFFFF82204000, 0x4C0D8, "dtrace.ko", "/boot/kernel/dtrace.ko", [(410, "dtrace")]),
        (4, 1, 0xFFFFFFFF82251000, 0xA3B0, "fbt.ko", "/boot/kernel/fbt.ko", [(412, "fbt")]),
        (5, 1, BASE, layout.image.size, "if_rem.ko", "/boot/modules/if_rem.ko", [(520, "rem")]),
    ]
    out = "Id Refs Address" + " " * 11 + " " + f"{'Size':>8}" + " Name\n"
    for ident, refs, address, size, name, path, modules in files:
        out += f"{ident:2d} {refs:4d} {address:#18x} {size:8x} {name} ({path})\n"
        out += "\tContains modules:\n\t\t Id Name\n"
        out += "".join(f"\t\t{number:3d} {module}\n" for number, module in modules)
    return out


# -- the other templates' outputs ----------------------------------------------------------------------------

#: DTRACE_FUNCNAMELEN - 1: an FBT probe's function name (probefunc) is at most this long.
FUNCNAME_MAX = 191


def _probefunc(name: str) -> str:
    return name[:FUNCNAME_MAX]


def count_output(layout: Layout) -> str:
    """The count template: ``@calls[probefunc] = count()``, keys ``"  %-50s"``, values ``" %16lld"``."""
    rng = random.Random(7)
    calls = {}
    for frames, count, module_pcs in rem_stacks(layout):
        for pc in module_pcs:
            function = layout.function_at(pc - BASE)
            calls[function.name] = calls.get(function.name, 0) + count * rng.randint(40, 60)
    rows = sorted(calls.items(), key=lambda item: (item[1], item[0]))
    return "\n" + "".join(f"  {_probefunc(name):<50} {value:16d}\n" for name, value in rows) + "\n"


def _quantize(values: list[int]) -> str:
    """A quantize() value as libdtrace prints it: header, then the buckets around the data."""
    buckets: dict[int, int] = {}
    for value in values:
        low = 1 << (value.bit_length() - 1) if value > 0 else 0
        buckets[low] = buckets.get(low, 0) + 1
    scale = [0] + [1 << i for i in range(63)]
    first = max(0, scale.index(min(buckets)) - 1)
    last = min(len(scale) - 1, scale.index(max(buckets)) + 1)
    total = len(values)
    out = "\n%16s %41s %-9s\n" % ("value", "------------- Distribution -------------", "count")
    for low in scale[first:last + 1]:
        count = buckets.get(low, 0)
        bar = "@" * int(count * 40 / total + 0.5)
        out += "%16d |%-40s %-9d\n" % (low, bar, count)
    return out


def latency_output(layout: Layout) -> str:
    """The latency template: @ns (quantize), @avg_ns (avg) and @total_ns (sum), keyed by probefunc."""
    rng = random.Random(11)
    timed = {
        "rem_intr": (2600, 900, 400), "rem::em::rx::rxeof": (1900, 700, 400),
        "rem_transmit": (1100, 300, 180), "rem::em::tx::transmit": (800, 250, 180),
        "rem::em::tx::txeof": (300, 80, 400), "rem::hw::intr::decode": (120, 40, 400),
    }
    names = {demangle_symbol(f.name).name: f.name for f in layout.functions}
    samples = {names[d]: [max(1, int(mu * rng.lognormvariate(0, sigma / mu))) for _ in range(n)]
               for d, (mu, sigma, n) in timed.items()}
    out = "\n"
    for name, values in sorted(samples.items(), key=lambda item: (sum(item[1]), item[0])):
        out += f"  {_probefunc(name):<50}" + _quantize(values) + "\n"
    out += "\n"
    for name, values in sorted(samples.items(), key=lambda item: (sum(item[1]) // len(item[1]), item[0])):
        out += f"  {_probefunc(name):<50} {sum(values) // len(values):16d}\n"
    out += "\n"
    for name, values in sorted(samples.items(), key=lambda item: (sum(item[1]), item[0])):
        out += f"  {_probefunc(name):<50} {sum(values):16d}\n"
    return out + "\n"


def flow_output(layout: Layout) -> str:
    """The flow template: ``"%3d %6d %d %*s-> %s"`` per event, two threads interleaved."""
    names = {demangle_symbol(f.name).name: f.name for f in layout.functions}

    def calls(tree, depth=0):
        name, children = tree
        yield depth, "->", names[name]
        for child in children:
            yield from calls(child, depth + 2)
        yield depth, "<-", names[name]

    rx = ("rem_intr", [("rem::hw::regs::read", [("rem::hw::regs::RegisterBank::shadow_slot", [])]),
                       ("rem::hw::intr::decode", [("rem::hw::intr::on_rx", [])]),
                       (RX, [(NEW, []), (NEW, []), (NEW, []), (RX_FRAME, []), (RX_FRAME, []), (RX_FRAME, [])]),
                       ("rem::em::tx::txeof", []),
                       ("rem::hw::regs::write", [("rem::hw::regs::RegisterBank::shadow_slot", [])])])
    tx = ("rem_transmit", [("rem::em::tx::transmit", [("rem::em::tx::pick_queue", [])])])
    events = []
    clock = 18_446_100_000
    for thread, cpu, tree, start in ((100125, 2, rx, 0), (101872, 0, tx, 350), (100125, 2, rx, 2900),
                                     (101872, 1, tx, 3300)):
        for step, (depth, arrow, name) in enumerate(calls(tree)):
            events.append((clock + start + 97 * step, cpu, thread, depth, arrow, name))
    events.sort()
    return "".join(f"{cpu:3d} {thread:6d} {time} {'':{depth}}{arrow} {name}\n"
                   for time, cpu, thread, depth, arrow, name in events)


# -- pmcstat -R pmc.log -o pmc.txt ---------------------------------------------------------------------------


def pmcstat_log(layout: Layout) -> str:
    """The same if_rem samples as hwpmc callchains, printed as ``pmcstat -R pmc.log -o pmc.txt`` does."""
    rng = random.Random(3)

    def entry(tag: str, fields: str) -> str:
        return f"{tag:<9} {fields}\n"

    out = entry("initlog", '0x5000000 "INTEL_ATOM_GOLDMONT"') + entry(
        "allocate", '0x10000 "CPU_CLK_UNHALTED.THREAD_P" 0x4014')
    for path, base in (("/boot/kernel/kernel", KERNEL_BASE), ("/boot/kernel/dtrace.ko", 0xFFFFFFFF82204000),
                       ("/boot/modules/if_rem.ko", BASE)):
        out += entry("map-in", f'-1 {base:#x} "{path}"')
    kernel_pcs = {}
    for frames, count, module_pcs in rem_stacks(layout):
        pcs = list(module_pcs)
        for frame in frames[len(module_pcs):]:
            # Kernel frames have no symbols in this example: a fixed made-up PC per frame text.
            pcs.append(kernel_pcs.setdefault(frame, KERNEL_BASE + 0x800000 + 0x1357 * (len(kernel_pcs) + 1)))
        for _ in range(max(1, count // 40)):
            cpu = rng.randrange(4)
            out += entry("callchain", f"-1 0x10000 {cpu} {len(pcs)} s")
            out += "".join(entry("...", f"{pc:#x}") for pc in pcs)
    return out + entry("closelog", "")


def pmcstat_callgraph() -> str:
    """The C driver's samples as ``pmcstat -R pmc.log -G pmc.graph`` prints them (usr.sbin/pmcstat/pmcpl_callgraph.c).

    Top level: the sampled function; below it, its callers; the image after `` @ `` where it changes.
    pmcstat names a C module's functions correctly; for per-function-section Rust modules it cannot.
    """
    tree: dict = {}
    for kernel, frames, samples in EM_PATHS:
        chain = [(f.split("+")[0], "/boot/modules/if_em.ko") for f in frames[::-1]]
        chain = [(n.replace("kernel`", ""), "/boot/kernel/kernel" if n.startswith("kernel`") else image)
                 for n, image in chain]
        for frame in kernel:
            name = frame.replace("kernel`", "").split("+")[0]
            chain.append((name, "/boot/kernel/kernel"))
        level = tree
        for node in chain:
            entry = level.setdefault(node, [0, {}])
            entry[0] += samples
            level = entry[1]
    total = sum(entry[0] for entry in tree.values())
    out = [f"@ CPU_CLK_UNHALTED.THREAD_P [{total} samples]\n\n"]

    def emit(node, entry, depth, parent, previous):
        count, children = entry
        line = " " * depth + ("100.0% " if count == parent else f"{100.0 * count / parent:05.2f}% ")
        tag = f" [{count}] "
        line += tag + " " * max(0, 12 - len(tag)) + " " * depth + node[0]
        if previous[0] != node[1]:
            previous[0] = node[1]
            line += f" @ {node[1]}"
        out.append(line + "\n")
        for child, child_entry in sorted(children.items(), key=lambda item: (-item[1][0], item[0])):
            emit(child, child_entry, depth + 1, count, previous)

    for node, entry in sorted(tree.items(), key=lambda item: (-item[1][0], item[0])):
        emit(node, entry, 0, total, [None])
        out.append("\n")
    return "".join(out)


# -- top -bzSHCP captures of the C and the Rust driver --------------------------------------------------------

THREADS = {
    "em": [(12, "intr{irq264: em0:rx0}", -92, 31.0), (12, "intr{irq265: em0:tx0}", -92, 6.5),
           (1893, "iperf3{iperf3}", 52, 36.0), (0, "kernel{em0 rxq}", -76, 9.0), (12, "intr{swi1: netisr 0}", -72, 2.1),
           (2, "clock{clock (0)}", -60, 0.3), (1894, "top", 20, 0.1)],
    "rem": [(12, "intr{irq264: rem0}", -92, 27.5), (1893, "iperf3{iperf3}", 52, 35.5),
            (0, "kernel{rem0 taskq}", -76, 7.8), (12, "intr{swi1: netisr 0}", -72, 2.0),
            (2, "clock{clock (0)}", -60, 0.3), (1894, "top", 20, 0.1)],
}


def top_capture(driver: str, displays: int = 6) -> str:
    """``top -bzSHCP -s 1 -d N all`` output (usr.bin/top/display.c layout), 4 CPUs."""
    rng = random.Random(driver)
    out = []
    for second in range(displays):
        uptime = 41 * 60 + 17 + second
        out.append(f"last pid:  1894;  load averages:  1.31,  0.64,  0.29  up 0+00:{uptime // 60:02d}:"
                   f"{uptime % 60:02d}    14:22:{5 + second:02d}")
        out.append("154 threads: 3 running, 131 sleeping, 20 waiting")
        rows = sorted(((pid, name, pri, max(0.0, rng.gauss(mean, mean / 10))) for pid, name, pri, mean in
                       THREADS[driver]), key=lambda row: -row[3])
        busy = sum(row[3] for row in rows)
        for cpu in range(4):
            system = min(99.0, busy / 4 * rng.uniform(0.8, 1.2) * 0.8)
            interrupt, user = system / 6, system / 10
            idle = 100 - system - interrupt - user
            out.append(f"CPU {cpu}: {user:4.1f}% user,  0.0% nice, {system:4.1f}% system, {interrupt:4.1f}% "
                       f"interrupt, {idle:4.1f}% idle")
        out += ["Mem: 23M Active, 448M Inact, 1376K Laundry, 1190M Wired, 104M Buf, 6127M Free",
                "Swap: 2048M Total, 2048M Free", "",
                "  PID USERNAME    PRI NICE   SIZE    RES STATE    C   TIME     CPU COMMAND"]
        for pid, name, pri, cpu_percent in rows:
            state, nice, size, res = ("WAIT", "-", "0B", "272K") if pid in (0, 2, 12) else ("select", "0", "20M",
                                                                                            "6876K")
            out.append(f"{pid:5d} root        {pri:3d} {nice:>4} {size:>6} {res:>6} {state:<8} {rng.randrange(4)}"
                       f"   0:{second + 10:02d} {cpu_percent:6.2f}% {name}")
        out.append("")
    return "\n".join(out) + "\n"


# -- a `tracebridge record` bundle of the stack capture ----------------------------------------------------

#: The directory `tracebridge record if_rem.ko --template stack -o run/ -- iperf3 ...` would have written.
BUNDLE = "run"
#: The bundle's module file: a copy of examples/if_rem.ko, as `record` makes it (a bundle's files must lie
#: inside it, so a symbolic link out of it is refused by the bundle reader).
BUNDLE_MODULE = f"{BUNDLE}/if_rem.ko"
TIMES = {"started": "2026-11-29T14:22:03.412+00:00", "traced": "2026-11-29T14:22:04.415+00:00",
         "stopped": "2026-11-29T14:22:35.201+00:00"}
WORKLOAD = ["iperf3", "-c", "10.0.0.2", "-t", "30"]


def cpu_series() -> str:
    """The CPU series `record` samples with psutil (FreeBSD: no thread names, the tid stands in)."""
    from tracebridge.cputime.series import ALL_CPUS, COLUMNS, Row, cpu_row, to_frame

    rng = random.Random("cpu")
    tids = {"intr{irq264: rem0}": 100125, "iperf3{iperf3}": 101872, "kernel{rem0 taskq}": 100089,
            "intr{swi1: netisr 0}": 100030, "clock{clock (0)}": 100011, "top": 101880}
    rows = []
    for second in range(1, 31):
        busy = 0.0
        for pid, name, _, mean in THREADS["rem"]:
            process = name.split("{")[0]
            percent = round(max(0.0, rng.gauss(mean, mean / 10)), 2)
            user = round(percent if process in ("iperf3", "top") else 0.0, 2)
            rows.append(Row(float(second), pid, process, tids[name], str(tids[name]), user,
                            round(percent - user, 2), percent))
            busy += percent
        for cpu in range(4):
            rows.append(cpu_row(float(second), f"cpu{cpu}", round(busy / 40, 2), round(busy / 4 * 0.9, 2)))
        rows.append(cpu_row(float(second), ALL_CPUS, round(busy / 10, 2), round(busy * 0.9, 2)))
    frame = to_frame(rows).loc[:, list(COLUMNS)]
    return frame.to_csv(index=False, float_format="%.3f", lineterminator="\n")  # as write_series writes it


def bundle_files(layout: Layout, stack: str, kldstat_text: str) -> dict[str, str]:
    """Every text file of the example bundle, as `tracebridge record` names them (the module: :func:`expected`)."""
    import hashlib
    import json
    import tempfile

    from tracebridge import __version__
    from tracebridge.cli import main as tracebridge

    with tempfile.TemporaryDirectory() as scratch:
        module = Path(scratch) / "if_rem.ko"
        module.write_bytes(MODULE.read_bytes())
        script, probes = Path(scratch) / "script.d", Path(scratch) / "probes.json"
        words = ["gen-probes", str(module), "--template", "stack", "--base", f"{BASE:#x}", "-o", str(script),
                 "--map", str(probes)]
        if tracebridge(words) != 0:
            raise SystemExit("make_examples: gen-probes failed")
        files = {"script.d": script.read_text(), "probes.json": probes.read_text()}
    words[1], words[words.index("-o") + 1], words[-1] = "/home/dev/if_rem/if_rem.ko", "run/script.d", "run/probes.json"
    files.update({"kldstat.txt": kldstat_text, "dtrace.out": stack, "dtrace.stderr": "", "cpu.csv": cpu_series()})
    roles = {"if_rem.ko": "module", "kldstat.txt": "kldstat", "script.d": "script", "probes.json": "probe-map",
             "dtrace.out": "profile", "dtrace.stderr": "tool-output", "cpu.csv": "cpu"}
    sizes = {name: len(text.encode()) for name, text in files.items()} | {"if_rem.ko": MODULE.stat().st_size}
    manifest = {
        "format": "tracebridge-bundle", "version": 1, "mode": "dtrace", "template": "stack", "pmc_event": None,
        "module": {"path": "/home/dev/if_rem/if_rem.ko", "file": "if_rem.ko",
                   "sha256": hashlib.sha256(MODULE.read_bytes()).hexdigest(), "loaded_as": "/boot/modules/if_rem.ko",
                   "base": f"{BASE:#x}", "size": layout.image.size},
        # Not the hash of a real kernel: readers add the kernel only when /boot/kernel/kernel has this hash.
        "kernel": {"path": "/boot/kernel/kernel", "sha256": hashlib.sha256(b"synthetic example kernel").hexdigest()},
        "old_kernel_linker": False,
        "host": {"uname": "FreeBSD dut 14.2-RELEASE FreeBSD 14.2-RELEASE releng/14.2-n269506-c8918d6c7412 GENERIC "
                           "amd64",
                 "freebsd_version": "14.2-RELEASE\n14.2-RELEASE"},
        "tools": {"dtrace": {"path": "/usr/sbin/dtrace", "version": "dtrace: Sun D 1.13"},
                  "kldstat": {"path": "/sbin/kldstat", "version": None}},
        "commands": {"kldstat": ["kldstat", "-v"], "gen-probes": ["tracebridge", *words],
                     "dtrace": ["/usr/sbin/dtrace", "-s", "script.d", "-o", "dtrace.out"], "workload": WORKLOAD},
        "times": TIMES, "stopped_by": "the workload exited with status 0", "workload_status": 0,
        "tracers": {"dtrace": {"exit_status": 0, "signals": ["SIGINT"], "exited_early": False}},
        "files": [{"name": name, "role": role, "bytes": sizes[name]} for name, role in sorted(roles.items())],
        "notes": [], "tracebridge": __version__,
    }
    files["manifest.json"] = json.dumps(manifest, indent=1, ensure_ascii=False) + "\n"
    return {f"{BUNDLE}/{name}": text for name, text in files.items()}


# -- everything ---------------------------------------------------------------------------------------------


#: Where the synthetic kernel loaded inl.ko (the DWARF example of the tutorial).
INL_BASE = 0xFFFFFFFF82A40000


def inl_stack() -> str:
    """``stack()`` samples in inl.ko's interrupt path: leaves at every instruction of ``inl_rxeof``, and
    of ``<Drain as Iterator>::next`` under its real call site in ``inl_drain`` (a return address)."""
    layout = Layout(HERE / "inl.ko")
    rng = random.Random(14)
    kernel = ["kernel`intr_event_execute_handlers+0x99", "kernel`ithread_loop+0x1a6", "kernel`fork_exit+0x80",
              FORK_TRAMPOLINE]
    entries = [([f"{INL_BASE + pc:#x}", *kernel], rng.randint(1, 40))
               for pc in layout.instruction_starts(layout.by_name["inl_rxeof"])]
    for callee, return_address in layout.calls.get("inl_drain", ()):
        entries += [([f"{INL_BASE + pc:#x}", f"{INL_BASE + return_address:#x}", *kernel], rng.randint(1, 20))
                    for pc in layout.instruction_starts(layout.by_name[callee])]
    return _aggregation(entries)


#: The kinst probes of the tutorial's csum.d (``--inlined 'inl::csum::fold' --at csum.rs:7``): function, offset.
INL_KINST_SITES = [("inl_refill", 145), ("inl_rxeof", 233), ("inl_rxeof", 250), ("inl_rxeof", 308),
                   ("inl_rxeof", 328), ("inl_rxeof", 439)]


def inl_kinst_count() -> str:
    """csum.d's ``@hits[probefunc, probename] = count()`` at exit: two string keys ``"  %-50s"`` each
    (kinst's probename is the offset in decimal), the count ``" %16lld"``, smallest first."""
    rng = random.Random(21)
    rows = sorted(((function, str(offset), rng.randint(1000, 90000)) for function, offset in INL_KINST_SITES),
                  key=lambda row: (row[2], row[0], row[1]))
    return "\n" + "".join(f"  {function:<50}  {offset:<50} {value:16d}\n" for function, offset, value in rows) + "\n"


def outputs() -> dict[str, str]:
    layout = Layout(MODULE)
    rem = [(frames, count) for frames, count, _ in rem_stacks(layout)]
    names = ("# C function (if_em)<TAB>the Rust function of if_rem that does its work\n"
             "em_msix_rx\trem_intr\nem_rxeof\trem::em::rx::rxeof\nem_txeof\trem::em::tx::txeof\n"
             "em_mq_start\trem_transmit\nem_xmit\trem::em::tx::transmit\n")
    stack, kldstat_text = _aggregation(rem), kldstat(layout)
    return {
        "kldstat.txt": kldstat_text,
        "if_rem.stack.txt": stack,
        "if_em.stack.txt": _aggregation(em_stacks()),
        "if_rem.count.txt": count_output(layout),
        "if_rem.latency.txt": latency_output(layout),
        "if_rem.flow.txt": flow_output(layout),
        "if_rem.pmc.txt": pmcstat_log(layout),
        "if_em.pmc.graph": pmcstat_callgraph(),
        "em-rem.names": names,
        "top-em.txt": top_capture("em"),
        "top-rem.txt": top_capture("rem"),
        "inl.stack.txt": inl_stack(),
        "inl.kinst.txt": inl_kinst_count(),
        **bundle_files(layout, stack, kldstat_text),
    }


def expected() -> dict[str, bytes]:
    """Every file this script writes, as bytes: the captures, and the bundle's copy of the module."""
    return {**{name: text.encode() for name, text in outputs().items()}, BUNDLE_MODULE: MODULE.read_bytes()}


def stale(files: dict[str, bytes]) -> list[str]:
    """The files in examples/ that are missing, not regular files, or not these bytes."""
    return [name for name, data in files.items()
            if (HERE / name).is_symlink() or not (HERE / name).is_file() or (HERE / name).read_bytes() != data]


def main() -> int:
    files = expected()
    if "--check" in sys.argv[1:]:
        out_of_date = stale(files)
        if out_of_date:
            print(f"examples out of date: {', '.join(out_of_date)}: run python examples/make_examples.py",
                  file=sys.stderr)
            return 1
        return 0
    (HERE / BUNDLE).mkdir(exist_ok=True)
    for name, data in files.items():
        (HERE / name).unlink(missing_ok=True)  # a link is replaced, never written through
        (HERE / name).write_bytes(data)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
