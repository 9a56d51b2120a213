"""Fuzz the bundle reader (tracebridge/readers/bundle.py): a `tracebridge record` directory whose manifest is mutated."""

from __future__ import annotations

import shutil

from _harness import DATA, MODULES, SCRATCH, Target, check_cli, main

from tracebridge.readers import bundle
#: A bundle as `record` leaves it: the module, its kldstat, a DTrace capture, and the manifest under test.
BUNDLE = SCRATCH / "bundle"
FILES = {"if_rem.ko": (MODULES / "rem_legacy_fp.ko", bundle.ROLE_MODULE),
         "kldstat.txt": (None, bundle.ROLE_KLDSTAT),
         "dtrace.txt": (DATA / "dtrace" / "freebsd-hex-only.txt", bundle.ROLE_PROFILE)}
KLDSTAT = "Id Refs Address                Size Name\n 2    1 0xffffffff82a1c000     2d90 if_rem.ko\n"


def _lay_out() -> None:
    if BUNDLE.exists():
        return
    BUNDLE.mkdir()
    for name, (source, _) in FILES.items():
        if source is None:
            (BUNDLE / name).write_text(KLDSTAT)
        else:
            shutil.copyfile(source, BUNDLE / name)


def seeds() -> list[bytes]:
    _lay_out()
    module = str(BUNDLE / "if_rem.ko")
    manifest = bundle.Manifest(
        mode="dtrace", template="stack", pmc_event=None,
        module=bundle.ModuleRecord(module, "if_rem.ko", bundle.sha256_of(module), "if_rem.ko", 0xFFFFFFFF82A1C000,
                                   0x2D90),
        kernel=None, old_kernel_linker=False, host={"uname": "FreeBSD 14.1"}, tools={}, commands={},
        times={"started": None, "stopped": None}, stopped_by="Ctrl-C was pressed", workload_status=None,
        tracers={"dtrace": bundle.TracerRecord(0, ("SIGINT",), False)},
        files=bundle.describe_files(str(BUNDLE), {name: role for name, (_, role) in FILES.items()}))
    manifest.save(str(BUNDLE))
    return [(BUNDLE / bundle.MANIFEST).read_bytes()]


def check(data: bytes) -> None:
    _lay_out()
    (BUNDLE / bundle.MANIFEST).write_bytes(data)
    check_cli(["fold", str(BUNDLE)])


TARGET = Target("bundle", seeds, check)

if __name__ == "__main__":
    main(TARGET)
