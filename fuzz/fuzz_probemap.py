"""Fuzz the probe map reader (tracebridge/probes/probemap.py): maps from gen-probes, read back by fold."""

from __future__ import annotations

from _harness import DATA, MODULES, SCRATCH, Target, check_cli, main, run_cli, scratch

CAPTURE = DATA / "dtrace" / "probefunc-count.txt"


def seeds() -> list[bytes]:
    out = []
    for template in ("count", "flow"):
        mapping = SCRATCH / f"seed-{template}.json"
        run_cli(["gen-probes", str(MODULES / "rem_legacy_fp.ko"), "-t", template, "-o", str(SCRATCH / "seed.d"),
                 "--map", str(mapping)])
        out.append(mapping.read_bytes())
    return out


def check(data: bytes) -> None:
    check_cli(["fold", str(CAPTURE), "--probe-map", scratch("map.json", data)])


TARGET = Target("probemap", seeds, check)

if __name__ == "__main__":
    main(TARGET)
