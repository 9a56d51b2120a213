"""A script in many parts costs time linear in the functions (issue 19, item 6).

Every part's header said how many functions were traced and whether any
field was a glob, counting them again over all parts: a module of 10^6
functions (564 parts) took 661 s.  Timing is for benchmarks/; here the work
is counted: the fixture module is split one function per part, and every
look at a traced function's probe field while all parts are rendered is
counted.  Quadratic rendering looks N times per function; linear a few.
"""

from __future__ import annotations

from dataclasses import dataclass

from fixture_paths import MODULES
from tracebridge.image.elf import open_module
from tracebridge.probes.dscript import build
from tracebridge.probes.generate import generate


@dataclass
class Counter:
    looks: int = 0


class Watched:
    """A planned function that counts the reads of its ``field``."""

    def __init__(self, planned, counter: Counter):
        self._planned, self._counter = planned, counter

    def __getattr__(self, name):
        if name == "field":
            self._counter.looks += 1
        return getattr(self._planned, name)


def test_rendering_every_part_looks_at_each_function_a_few_times():
    generated = generate(open_module(MODULES / "rem_legacy_fp.ko"), "latency")
    script = build(generated.template, generated.plan, budget=1)  # one function per part
    traced = sum(len(part) for part in script.parts)
    assert len(script.parts) == traced > 20
    counter = Counter()
    script.parts = [[Watched(planned, counter) for planned in part] for part in script.parts]
    files = [f"p{i}.d" for i in range(len(script.parts))]
    texts = [script.text(index, files) for index in range(len(script.parts))]
    assert all(f"for {traced} of" in text for text in texts)
    assert counter.looks <= 8 * traced, f"{counter.looks} looks at {traced} functions"
