"""Fuzz the saved kldstat reader (tracebridge/readers/kldstat.py): load addresses for symmap and fold."""

from __future__ import annotations

import shutil

from _harness import DATA, MODULES, SCRATCH, Target, check_cli, from_tests, main, scratch


def listed_module() -> str:
    """The fixture module under the name the kldstat seeds list."""
    module = SCRATCH / "if_rem.ko"
    if not module.exists():
        shutil.copyfile(MODULES / "rem_legacy_fp.ko", module)
    return str(module)


def seeds() -> list[bytes]:
    texts = from_tests("readers", "test_kldstat")
    return [texts.VERBOSE_64.encode(), texts.PLAIN_32_OLD.encode(), texts.HUMANISED.encode()]


def check(data: bytes) -> None:
    path = scratch("kldstat.txt", data)
    check_cli(["symmap", listed_module(), "--kldstat", path])
    check_cli(["fold", str(DATA / "dtrace" / "freebsd-hex-only.txt"), "--module", listed_module(), "--kldstat", path])


TARGET = Target("kldstat", seeds, check)

if __name__ == "__main__":
    main(TARGET)
