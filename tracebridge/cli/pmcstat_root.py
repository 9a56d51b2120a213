"""``tracebridge pmcstat-root``: a root for ``pmcstat -r`` in which Rust modules are pmcstat-ready images.

With it pmcstat's own outputs (``-G``, ``-g``, ``-F``, ``-T``, ``-m``) and
the tools built on libpmcstat name Rust functions; see
:mod:`tracebridge.probes.pmcimage` for the image and
:mod:`tracebridge.probes.pmcroot` for the tree and libpmcstat's lookup order.
"""

from __future__ import annotations

import argparse
import os
import sys

from tracebridge.probes.pmcroot import DEFAULT_KERNEL_DIR
from tracebridge.readers.placement import add_old_kernel_linker_argument


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "pmcstat-root", help="write a root for `pmcstat -r` in which Rust modules have their functions named",
        description="Write ROOT/boot/modules/NAME.ko for each module: an ELF image libpmcstat reads as the "
                    "kernel laid the module out (one executable section over the whole module, one symbol "
                    "per function at its run-time offset, demangled names), and make the rest of ROOT "
                    "resolve to the real system through symbolic links. Then `pmcstat -R LOG -r ROOT -G "
                    "out.txt` (and -g, -F, -T, -m) name the Rust functions.")
    parser.add_argument("modules", nargs="+", metavar="MODULE.ko", help="kernel module ELF files")
    parser.add_argument("-o", "--output", metavar="ROOT", required=True,
                        help="the root to create (a new or empty directory)")
    parser.add_argument("--force", action="store_true",
                        help="replace ROOT if an earlier pmcstat-root made it (never another directory)")
    parser.add_argument("--mangled", action="store_true",
                        help="keep the symbols' mangled names (default: rustc-demangle's names, generic "
                             "instances told apart by #hash)")
    parser.add_argument("--kernel-dir", metavar="DIR", default=DEFAULT_KERNEL_DIR,
                        help="pmcstat's kernel directory: its -k DIR, or the directory of `sysctl -n "
                             f"kern.bootfile` (default {DEFAULT_KERNEL_DIR})")
    parser.add_argument("--loaded-from", action="append", default=[], metavar="PATH",
                        help="a full path a module was kldloaded from, for kernels that log full paths "
                             "(repeatable; /boot/modules/NAME.ko, /boot/kernel/NAME.ko and each MODULE.ko's "
                             "absolute path are always covered); matched to a module by file name")
    parser.add_argument("--system", metavar="DIR", default="/",
                        help="the system tree the root's links point to (default /)")
    add_old_kernel_linker_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tracebridge.image.elf import open_module
    from tracebridge.probes.pmcroot import plan_root, write_root
    from tracebridge.support.errors import UsageError

    modules = []
    for path in args.modules:
        image = open_module(path, init_fini_arrays=not args.old_kernel_linker)
        if image.elf_type == "ET_EXEC":
            raise UsageError(f"{path}: this is a kernel, not a module; pmcstat reads the kernel correctly as it is")
        modules.append(image)
    names = {image.filename for image in modules}
    for extra in args.loaded_from:
        if os.path.basename(extra) not in names:
            raise UsageError(f"--loaded-from {extra}: no MODULE.ko given is named {os.path.basename(extra)}")
    plan = plan_root(
        [(image, [os.path.abspath(image.path),
                  *(p for p in args.loaded_from if os.path.basename(p) == image.filename)]) for image in modules],
        system=args.system, kernel_dir=args.kernel_dir, mangled=args.mangled)
    write_root(plan, args.output, force=args.force)
    for image in modules:
        image.close()
    for path, count in plan.functions.items():
        print(f"tracebridge: {os.path.join(args.output, path)}: {count} functions at their run-time offsets",
              file=sys.stderr)
    print(f"tracebridge: read a hwpmc log with: pmcstat -R LOG -r {args.output} -G callgraph.txt", file=sys.stderr)
    return 0
