"""``tracebridge inspect``: one screen on how traceable a module is, and how to make it more so."""

from __future__ import annotations

import argparse
import json

from tracebridge.support import gcpause
from tracebridge.cli.common import add_base_argument, add_module_argument, add_output_argument, load_module
from tracebridge.cli.fbt_options import add_fbt_arguments, fbt_options_from_args
from tracebridge.support.outputs import open_output


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "inspect", help="report how traceable a module is by DTrace FBT, and what to change",
        description="Report, for one kernel module, how many functions FreeBSD's FBT provider will probe "
                    "(entry, return), why the others get nothing, which names need globs in probe "
                    "descriptions, and the build or link changes that fix what can be fixed. The exit "
                    "status is 0 whatever the verdict; 2 for a file that cannot be read.")
    add_module_argument(parser)
    parser.add_argument("--module-name", metavar="NAME",
                        help="FBT's module name if the file will be loaded under another name")
    add_base_argument(parser)
    add_fbt_arguments(parser)
    parser.add_argument("--format", "-f", choices=("text", "json"), default="text",
                        help="text for people (default), json for programs")
    add_output_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Hundreds of thousands of small acyclic objects on a big module: see gcpause.
    with gcpause.paused():
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    image = load_module(args)
    if image.elf_type == "ET_DYN" and not image.sections_named("set_modmetadata_set"):
        # A program or shared library (/bin/ls): amd64 modules are ET_REL, and the ET_DYN
        # modules of i386 and arm64 declare themselves in set_modmetadata_set.
        from tracebridge.support.errors import InputError

        raise InputError(args.module, "is not a kernel module: an ET_DYN file without module metadata "
                                      "(no set_modmetadata_set section), so a program or a shared library; "
                                      "inspect takes a .ko (ET_REL on amd64) or the kernel")
    from tracebridge.probes.probeplan import plan_module  # the module reader, FBT's rules, the description fields

    plan = plan_module(image, modname=args.module_name, options=fbt_options_from_args(args, args.base))
    from tracebridge.probes.findings import inspect_plan

    report = inspect_plan(plan)
    with open_output(args.output, inputs=[args.module]) as out:
        if args.format == "json":
            out.write(json.dumps(report.to_json(), ensure_ascii=False, indent=1) + "\n")
        else:
            out.write(report.text())
    return 0
