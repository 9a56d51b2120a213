"""How the printouts of one DTrace aggregation combine (``--printouts sum|last|each``).

A script that prints an aggregation on a timer (``tick-60s { printa(@); }``)
prints it again and again.  With ``trunc(@)`` after ``printa`` each printout
holds what happened since the one before (a delta): the profile is their
sum.  Without it each printout holds everything so far (a running total):
the profile is the last one.  A running total never falls, so when no key
of a printout drops out or decreases in the next one and the total grows,
the printouts are taken as running totals (``last``); otherwise as deltas
(``sum``).  ``each`` keeps every printout apart, as its own aggregation.

:class:`Series` keeps what that needs while the text streams by: the sum,
the last complete printout and the one being read (each as big as the
aggregation's distinct keys, never as the number of printouts).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from tracebridge.support.errors import note

#: The rules ``--printouts`` offers; None (the default) lets the data decide between sum and last.
RULES = ("sum", "last", "each")

K = TypeVar("K")


@dataclass
class Series(Generic[K]):
    """The printouts of one aggregation as they stream by: key -> value, added up as they come.

    Values are numbers or anything with ``+`` and a ``total`` (histograms).
    ``values`` None: only the printouts are counted (an aggregation that is
    not shown).  The printout being read is kept by value only while the
    rule may still be ``last`` (given, or running totals so far).
    """

    values: dict[K, object] | None = field(default_factory=dict)
    #: The rule given (``--printouts``); None: the data decides.
    given: str | None = None
    #: The entries of the printout being read, as printed (several may fold into one key: offsets cut).
    entries: set = field(default_factory=set)
    current: dict[K, object] = field(default_factory=dict)
    last: dict[K, object] = field(default_factory=dict)
    printouts: int = 0
    #: No key fell or dropped out from one printout to the next so far.
    never_falls: bool = True
    grew: bool = False
    #: The printout being read is kept by value (the rule may still be ``last``).
    tracks: bool = False

    def __post_init__(self) -> None:
        self._update()

    def _update(self) -> None:
        self.tracks = self.values is not None and (self.given == "last" or (self.given is None and self.never_falls))

    def add(self, key: K, value) -> None:
        """One entry of the printout being read (the caller ends a printout when its key comes again)."""
        self.entries.add(key)
        if self.values is None:
            return
        if self.tracks:
            old = self.current.get(key)
            self.current[key] = value if old is None else old + value
        old = self.values.get(key)
        self.values[key] = value if old is None else old + value

    def extend(self, keys: Iterable[K], values: Iterable[int], entries: Iterable[object]) -> None:
        """Many numeric entries at once, cutting the printouts where an entry comes again.

        A printout's entries are unique, so one seen again starts the next
        printout; ``entries`` are the entries as printed, where several may
        fold into one key (frames whose offsets are cut).
        """
        current, seen, sums, tracks = self.current, self.entries, self.values, self.tracks
        for key, value, entry in zip(keys, values, entries):
            if entry in seen:
                self.end()
                current, seen, tracks = self.current, self.entries, self.tracks
            seen.add(entry)
            if tracks:
                current[key] = current.get(key, 0) + value
            sums[key] = sums.get(key, 0) + value

    def end(self) -> None:
        """The printout being read is complete."""
        if not self.entries:
            return
        self.printouts += 1
        if self.tracks and self.printouts > 1 and self.given is None:
            current = self.current
            for key, value in self.last.items():
                now = current.get(key)
                if now is None or _size(now) < _size(value):
                    self.never_falls = False
                    break
            else:
                self.grew = self.grew or sum(map(_size, current.values())) > sum(map(_size, self.last.values()))
        self.last, self.current, self.entries = self.current, {}, set()
        self._update()

    def rule(self) -> str:
        """The rule applied: the one given, else ``last`` for running totals and ``sum`` for deltas."""
        self.end()
        if self.given is not None:
            return self.given
        return "last" if self.printouts > 1 and self.never_falls and self.grew else "sum"

    def result(self) -> dict[K, object] | None:
        """The aggregation's values by the rule."""
        return self.last if self.rule() == "last" else self.values

    def tell(self, source: str, what: str) -> None:
        """Say on standard error how many printouts were read and how they were combined."""
        rule = self.rule()
        if self.printouts < 2:
            return
        if rule == "sum":
            why = ("values fall or keys drop out between them" if not self.never_falls
                   else "no total grows between them")
            how = "added up" + ("" if self.given else f": {why}, so each holds what came since the one before "
                                "(as after trunc())")
        else:
            how = "the last one is the total" + ("" if self.given else ": no value ever falls between them, so "
                                                 "each holds everything so far")
        note(f"{source}: {self.printouts} printouts of {what}, {how} (--printouts {rule}; "
             "choose with --printouts sum|last|each)")


def _size(value) -> float:
    return value if isinstance(value, (int, float)) else value.total
