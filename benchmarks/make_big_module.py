#!/usr/bin/env python3
"""Generate a large, realistic amd64 FreeBSD Rust kernel module for benchmarks.

    python benchmarks/make_big_module.py -n 100000 -o /tmp/big.ko
    python benchmarks/make_big_module.py -n 100000 -o /tmp/big_merged.ko --merged

The module is built the way kmod.mk builds a Rust module: GNU assembler source
with every function in its own ``.text.<mangled name>`` section (as rustc
emits), assembled with ``as``, linked with ``ld -r -d`` (or ``ld -r -T
tests/fixtures/ldscript.kmod.amd64`` with ``--merged``), every symbol but the
module event handler localised with ``objcopy``, and OSABI set to FreeBSD with
``elfedit``.

Names: about 70% legacy (``_ZN...17h<16 hex>E``, with ``$LT$``/``$GT$``/
``$u20$``/``..`` escapes) and 30% v0 (``_R...``). They are harvested from the
installed Rust toolchain when possible: v0 names straight from
``nm -D --defined-only`` of ``librustc_driver-*.so`` and ``libstd-*.so`` (both
v0-mangled in current toolchains), legacy names by re-mangling the
``rustfilt``-demangled paths of those symbols with the legacy scheme. When the
pool runs out, names are reused with a fresh hash (legacy) or a fresh crate
disambiguator of the same length (v0, so back-references stay valid) -- which
is also what real monomorphised code looks like. Without rustc/rustfilt (or
with ``--synthetic``) names are generated from word lists.

Bodies are a few instructions: about half with a ``push %rbp; mov %rsp,%rbp
... pop %rbp; ret`` frame, half without; some have two return sites, some call
another function (giving ``.rela.text.*`` sections), a few end in a tail-call
``jmp``, and about 1% live in ``.text.unlikely.*``.

With the default 100000 functions the object has more than 65280 sections,
so it uses ELF extended section numbering (``e_shnum == 0``, ``SHN_XINDEX``,
``.symtab_shndx``) exactly as a real module of that size would.
"""

from __future__ import annotations

import argparse
import glob
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time

from tracebridge.image.demangle import split_path

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_LDSCRIPT = os.path.join(HERE, os.pardir, "tests", "fixtures", "ldscript.kmod.amd64")
ENTRY_POINT = "big_modevent"

# --------------------------------------------------------------------------
# Legacy mangling (rustc_symbol_mangling::legacy), applied to demangled paths
# --------------------------------------------------------------------------

_LEGACY_ESCAPES = {
    "@": "$SP$", "*": "$BP$", "&": "$RF$", "<": "$LT$", ">": "$GT$",
    "(": "$LP$", ")": "$RP$", ",": "$C$", ":": ".", "-": ".",
}


def _legacy_sanitize(component: str) -> str:
    out = []
    for ch in component:
        if ch in _LEGACY_ESCAPES:
            out.append(_LEGACY_ESCAPES[ch])
        elif ch.isascii() and (ch.isalnum() or ch in "_.$"):
            out.append(ch)
        else:
            out.append("$u%x$" % ord(ch))
    s = "".join(out)
    # "Underscore-qualify anything that didn't start as an ident."
    if s and not (s[0].isascii() and (s[0].isalpha() or s[0] == "_")):
        s = "_" + s
    return s


_DISAMB_RE = re.compile(r"\{([a-z:_ ]+?)(?:#\d+)?\}")
_INT_SUFFIX_RE = re.compile(r"\b(\d+)(?:usize|isize|u8|u16|u32|u64|u128|i8|i16|i32|i64|i128)\b")


def legacy_from_demangled(path: str, h: int) -> str | None:
    """Legacy-mangle a demangled (v0-style) path with the given 64-bit hash."""
    # v0 spellings -> legacy spellings.
    path = path.replace("{shim:vtable#0}", "{{vtable.shim}}")
    path = _DISAMB_RE.sub(lambda m: "{{%s}}" % m.group(1).split(":")[0], path)
    path = _INT_SUFFIX_RE.sub(r"\1", path)
    path = path.replace(", ", ",")
    comps = []
    for i, c in enumerate(split_path(path)):
        if not c:
            return None
        if c.startswith("<") and i > 0:
            continue  # function generic args (`::<T>`): legacy omits them
        if c.startswith("<") and " as " not in c and c.endswith(">"):
            # `<Type>::method` (inherent impl): legacy spells the type's path.
            inner = split_path(c[1:-1])
            if all(inner):
                comps.extend(inner)
                continue
        comps.append(c)
    if not comps:
        return None
    mangled = "".join("%d%s" % (len(s), s) for s in map(_legacy_sanitize, comps))
    return "_ZN%s17h%016xE" % (mangled, h)


# --------------------------------------------------------------------------
# Name pools
# --------------------------------------------------------------------------

_LEGACY_OK = re.compile(r"^_ZN[0-9A-Za-z_$.]+17h[0-9a-f]{16}E$")
_V0_OK = re.compile(r"^_R[0-9A-Za-z_]+$")
_V0_DISAMB = re.compile(r"Cs([0-9A-Za-z]+)_")
_B62 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def harvest(verbose: bool) -> tuple[list[str], list[str]]:
    """(legacy, v0) names from the installed toolchain; empty lists if unavailable."""
    rustc, rustfilt = shutil.which("rustc"), shutil.which("rustfilt")
    if not rustc or not rustfilt:
        return [], []
    try:
        sysroot = subprocess.run([rustc, "--print", "sysroot"], check=True,
                                 capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return [], []
    libs = sorted(glob.glob(os.path.join(sysroot, "lib", "librustc_driver-*.so")))
    libs += sorted(glob.glob(os.path.join(sysroot, "lib", "rustlib", "*", "lib", "libstd-*.so")))
    names: set[str] = set()
    for lib in libs:
        r = subprocess.run(["nm", "-D", "--defined-only", lib], capture_output=True, text=True)
        for line in r.stdout.splitlines():
            f = line.split()
            if len(f) == 3 and f[1] in "Tt":
                names.add(f[2].split("@")[0])
    v0 = sorted(n for n in names if _V0_OK.match(n))
    legacy_src = sorted(n for n in names if n.startswith("_ZN") and _LEGACY_OK.match(n))
    if not v0:
        return legacy_src, []
    dem = subprocess.run([rustfilt], input="\n".join(v0) + "\n", capture_output=True,
                         text=True).stdout.splitlines()
    rng = random.Random(0x7ace)
    legacy = set(legacy_src)
    if len(dem) == len(v0):
        for d in dem:
            m = legacy_from_demangled(d, rng.getrandbits(64))
            if m and _LEGACY_OK.match(m):
                legacy.add(m)
    if verbose:
        print("harvested %d v0 and %d legacy names from %d libraries"
              % (len(v0), len(legacy), len(libs)), file=sys.stderr)
    return sorted(legacy), v0


_CRATES = ["rem", "kern", "net", "core", "alloc", "bus_dma", "iflib", "vm", "netinet", "hashbrown"]
_MODS = ["em", "rx", "tx", "hw", "regs", "phy", "eeprom", "intr", "stats", "ioctl", "sysctl",
         "mbuf", "ring", "queue", "dma", "tag", "map", "sync", "mutex", "callout", "taskqueue",
         "ifnet", "ether", "vlan", "tso", "csum", "lro", "rss", "msix", "pci", "bar", "fmt",
         "iter", "slice", "ptr", "mem", "option", "result", "cell", "raw_vec", "btree", "node"]
_TYPES = ["Adapter", "RxRing", "TxRing", "Descriptor", "LegacyDesc", "ExtendedDesc", "Softc",
          "DmaTag", "DmaMap", "Mbuf", "MbufChain", "Counter", "Stats", "RegisterBank", "Phy",
          "Eeprom", "Ifnet", "Queue", "TaskQueue", "Callout", "Mutex", "SpinLock", "Vec", "Option",
          "Result", "RefCell", "NonNull", "RawVec", "BTreeMap", "Iter", "Map", "Filter", "Zip"]
_TRAITS = ["core::fmt::Debug", "core::fmt::Display", "core::iter::traits::iterator::Iterator",
           "core::ops::drop::Drop", "core::clone::Clone", "rem::em::rx::RxDesc",
           "rem::em::tx::TxQueue", "core::ops::function::FnOnce<(u32,)>", "kern::sync::Lockable"]
_METHODS = ["new", "next", "fmt", "drop", "clone", "rx_frame", "tx_frame", "refill", "reclaim",
            "enqueue", "dequeue", "attach", "detach", "intr", "ioctl", "read", "write", "reset",
            "probe", "init", "fini", "lock", "unlock", "poll", "status", "length", "from_word",
            "handle_deferred_load_completion_callback", "grow_one", "reserve_rehash", "call_once"]
_ARGS = ["u8", "u16", "u32", "u64", "usize", "[u32; 4]", "&[u8]", "*mut u8", "()", "(u32,u64)",
         "rem::em::rx::LegacyDesc", "rem::em::rx::ExtendedDesc", "core::option::Option<u32>"]


def _synthetic_path(rng: random.Random) -> tuple[str, list[str]]:
    """A demangled path, and its plain components (for v0) when it has no impl."""
    crate = rng.choice(_CRATES)
    mods = [rng.choice(_MODS) for _ in range(rng.randint(1, 4))]
    r = rng.random()
    if r < 0.35:
        ty = "::".join([crate] + mods + [rng.choice(_TYPES)])
        if rng.random() < 0.5:
            ty += "<%s>" % rng.choice(_ARGS)
        path = "<%s as %s>::%s" % (ty, rng.choice(_TRAITS), rng.choice(_METHODS))
        return path, []
    comps = [crate] + mods
    if r < 0.7:
        comps.append(rng.choice(_TYPES) + "<T>")
    comps.append(rng.choice(_METHODS))
    if rng.random() < 0.1:
        comps.append("{closure#0}")
    return "::".join(comps), comps


def _v0_ident(s: str) -> str:
    sep = "_" if s[0].isdigit() or s[0] == "_" else ""
    return "%d%s%s" % (len(s), sep, s)


def _synthetic_v0(rng: random.Random) -> str:
    crate = rng.choice(_CRATES)
    mods = [rng.choice(_MODS) for _ in range(rng.randint(1, 4))]
    fn = rng.choice(_METHODS)
    s = "Cs%s_%s" % (_base62(rng.getrandbits(64)), _v0_ident(crate))
    for m in mods:
        s = "Nt%s%s" % (s, _v0_ident(m))
    return "_RNv%s%s" % (s, _v0_ident(fn))


def _base62(v: int) -> str:
    out = ""
    while True:
        v, r = divmod(v, 62)
        out = _B62[r] + out
        if v == 0:
            return out


def _revar_v0(name: str, rng: random.Random) -> str | None:
    m = _V0_DISAMB.search(name)
    if not m:
        return None
    # Same digit count (back-references are byte offsets), value < 2**64
    # (demanglers reject larger disambiguators).
    digits = len(m.group(1))
    lo, hi = 62 ** (digits - 1), min(62 ** digits, 1 << 64)
    if lo >= hi:
        return None
    new = _base62(rng.randrange(lo, hi))
    return name[:m.start(1)] + new + name[m.end(1):]


def make_names(n: int, legacy_ratio: float, synthetic: bool, seed: int,
               verbose: bool) -> list[str]:
    rng = random.Random(seed)
    legacy_pool, v0_pool = ([], []) if synthetic else harvest(verbose)
    n_legacy = int(round(n * legacy_ratio))
    n_v0 = n - n_legacy
    seen: set[str] = set()
    out: list[str] = []

    def take(pool: list[str], count: int, vary, fresh) -> None:
        pool = pool[:]
        rng.shuffle(pool)
        got, i, misses = 0, 0, 0
        while got < count:
            if i < len(pool):
                name = pool[i]
            elif pool and misses < 1000:
                name = vary(pool[rng.randrange(len(pool))])
            else:
                name = fresh()
            i += 1
            if name and name not in seen:
                seen.add(name)
                out.append(name)
                got += 1
                misses = 0
            else:
                misses += 1

    def vary_legacy(name: str) -> str:
        return name[:-18] + "h%016xE" % rng.getrandbits(64)

    def fresh_legacy() -> str:
        return legacy_from_demangled(_synthetic_path(rng)[0], rng.getrandbits(64)) or ""

    take(legacy_pool, n_legacy, vary_legacy, fresh_legacy)
    take(v0_pool, n_v0, lambda s: _revar_v0(s, rng), lambda: _synthetic_v0(rng))
    rng.shuffle(out)
    return out


# --------------------------------------------------------------------------
# Assembly
# --------------------------------------------------------------------------

def write_asm(path: str, names: list[str], fp_ratio: float, seed: int) -> None:
    rng = random.Random(seed ^ 0x5eed)
    n = len(names)
    with open(path, "w") as f:
        w = f.write
        w("\t.file\t\"big.rs\"\n")
        for i, name in enumerate(names):
            q = '"%s"' % name
            sect = ".text.unlikely." if rng.random() < 0.01 else ".text."
            w('\t.section\t"%s%s","ax",@progbits\n' % (sect, name))
            w("\t.globl\t%s\n\t.p2align\t4, 0x90\n\t.type\t%s,@function\n%s:\n" % (q, q, q))
            k = rng.randrange(1, 1 << 16)
            kind = rng.random()
            other = '"%s"' % names[rng.randrange(n)]
            if rng.random() < fp_ratio:
                w("\tpushq\t%rbp\n\tmovq\t%rsp, %rbp\n")
                if kind < 0.25:  # two return sites
                    w("\ttestl\t%%edi, %%edi\n\tje\t1f\n\tleal\t%d(%%rdi), %%eax\n"
                      "\tpopq\t%%rbp\n\tretq\n1:\n\txorl\t%%eax, %%eax\n\tpopq\t%%rbp\n\tretq\n" % k)
                elif kind < 0.45:  # a call: relocation against another section
                    w("\tcallq\t%s\n\taddl\t$%d, %%eax\n\tpopq\t%%rbp\n\tretq\n" % (other, k))
                elif kind < 0.50:  # tail call: no return probe
                    w("\tmovl\t$%d, %%esi\n\tpopq\t%%rbp\n\tjmp\t%s\n" % (k, other))
                else:
                    w("\tmovl\t$%d, %%eax\n\taddl\t%%edi, %%eax\n\tpopq\t%%rbp\n\tretq\n" % k)
            else:
                if kind < 0.25:
                    w("\tleal\t%d(%%rdi,%%rsi), %%eax\n\tretq\n" % k)
                elif kind < 0.40:
                    w("\tpushq\t%%rbx\n\tmovl\t%%edi, %%ebx\n\tcallq\t%s\n\taddl\t%%ebx, %%eax\n"
                      "\tpopq\t%%rbx\n\tretq\n" % other)
                elif kind < 0.45:
                    w("\tmovl\t$%d, %%esi\n\tjmp\t%s\n" % (k, other))
                else:
                    w("\tmovl\t%%edi, %%eax\n\timull\t$%d, %%eax, %%eax\n\tretq\n" % k)
            w("\t.size\t%s, .-%s\n" % (q, q))
        # C glue: the module event handler, in a plain .text, plus module data.
        w("\t.text\n\t.globl\t%s\n\t.p2align\t4, 0x90\n\t.type\t%s,@function\n%s:\n"
          "\tpushq\t%%rbp\n\tmovq\t%%rsp, %%rbp\n\tcallq\t\"%s\"\n\txorl\t%%eax, %%eax\n"
          "\tpopq\t%%rbp\n\tretq\n\t.size\t%s, .-%s\n"
          % (ENTRY_POINT, ENTRY_POINT, ENTRY_POINT, names[0], ENTRY_POINT, ENTRY_POINT))
        w("\t.section\t.rodata.str1.1,\"aMS\",@progbits,1\n.Lmodname:\n\t.asciz\t\"big\"\n")
        w("\t.data\n\t.p2align\t3\nbig_mod:\n\t.quad\t.Lmodname\n\t.quad\t%s\n\t.quad\t0\n"
          % ENTRY_POINT)
        w("\t.section\t.note.GNU-stack,\"\",@progbits\n")


def run(cmd: list[str]) -> None:
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit("make_big_module: %s failed: %s" % (cmd[0], (r.stderr or r.stdout).strip()))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=100000, help="number of functions (default 100000)")
    ap.add_argument("-o", "--output", required=True, help="output .ko path")
    ap.add_argument("--merged", action="store_true",
                    help="link with the merging linker script (one .text / .rodata)")
    ap.add_argument("--ldscript", default=DEFAULT_LDSCRIPT, help="linker script for --merged")
    ap.add_argument("--legacy-ratio", type=float, default=0.7, help="share of legacy names")
    ap.add_argument("--fp-ratio", type=float, default=0.5, help="share with a %%rbp frame")
    ap.add_argument("--synthetic", action="store_true", help="do not harvest names from rustc")
    ap.add_argument("--seed", type=int, default=1, help="random seed (output is deterministic)")
    ap.add_argument("--keep-temps", metavar="DIR", help="keep the .s/.o/.kld files in DIR")
    ap.add_argument("-q", "--quiet", action="store_true")
    a = ap.parse_args(argv)
    if a.n < 1:
        ap.error("-n must be at least 1")
    for tool in ("as", "ld", "objcopy", "elfedit"):
        if not shutil.which(tool):
            sys.exit("make_big_module: %s not found (GNU binutils needed)" % tool)

    t0 = time.monotonic()
    names = make_names(a.n, a.legacy_ratio, a.synthetic, a.seed, not a.quiet)
    work = a.keep_temps or tempfile.mkdtemp(prefix="big_module.")
    os.makedirs(work, exist_ok=True)
    try:
        s, o, kld = (os.path.join(work, "big" + ext) for ext in (".s", ".o", ".kld"))
        write_asm(s, names, a.fp_ratio, a.seed)
        run(["as", "--64", "-o", o, s])
        ld = ["ld", "-r", "-d"]
        if a.merged:
            ld += ["-T", a.ldscript]
        run(ld + ["-o", kld, o])
        tmp_out = a.output + ".tmp"
        run(["objcopy", "--strip-debug", "--keep-global-symbol=" + ENTRY_POINT, kld, tmp_out])
        run(["elfedit", "--output-osabi=FreeBSD", tmp_out])
        os.replace(tmp_out, a.output)
    finally:
        if not a.keep_temps:
            shutil.rmtree(work, ignore_errors=True)
    if not a.quiet:
        nl = sum(1 for x in names if x.startswith("_ZN"))
        print("wrote %s: %d functions (%d legacy, %d v0), %s, %.1f MB, %.1fs"
              % (a.output, len(names) + 1, nl, len(names) - nl,
                 "merged .text" if a.merged else "one section per function",
                 os.path.getsize(a.output) / 1e6, time.monotonic() - t0), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
