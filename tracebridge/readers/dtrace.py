"""What DTrace prints for aggregations and traced stacks, read back into stacks and tables.

The shapes follow libdtrace's printers (``dt_consume.c``, ``dtrace.c``):

* an aggregation entry prints its keys, then its value, then a newline.
  A string key is ``"  %-50s"``, an integer key or a scalar value
  (``count``/``sum``/``min``/``max``/``avg``) is ``" %16lld"``; a
  ``stack()``/``ustack()`` key starts with a newline and prints one frame
  per line indented ``stackindent`` (14) spaces, leaf first.  So
  ``@[stack()] = count()`` gives a blank line, the frames and the count
  right-aligned on its own line, ``@[stack(), ustack()]`` a blank line
  between the kernel and the user frames, ``@[execname, pid, stack()]``
  both keys on the line before the frames and ``@[stack(), execname]`` the
  key and the count on the line after them;
* ``quantize``/``lquantize``/``llquantize`` values print a
  ``value  ---- Distribution ---- count`` header and rows
  ``"%16lld |@@@@    %-9lld"`` (``< N`` / ``>= N`` labels at the ends of
  ``lquantize``/``llquantize``), then a blank line;
* traced records (``stack();`` in a clause, not quiet) print
  ``CPU     ID                    FUNCTION:NAME`` once, then per firing
  ``"%3d %6d %32s "`` and the traced data: each such record is one sample
  (numbers traced after the stack, ``" %16lld"`` on the line after the
  frames, are part of it, not a count).

Plain stack aggregations, by far the largest captures, are scanned a
block at a time (:func:`_read_plain_stacks`, natively when the core is
built); everything else is read line by line (:func:`parse`).  Frames are named once per distinct text by
:class:`~tracebridge.readers.dtrace_frames.FrameNamer`.  Stacks come out root
first: string and integer keys first (``execname`` as the root), then the
printed frames of all stack keys reversed, so ``@[stack(), ustack()]``
reads user root -> user leaf -> kernel root -> kernel leaf, as the samples
nested.  An output may print several aggregations, and each of them
several times (a ``tick`` probe's ``printa``): the printouts of one
aggregation combine as :mod:`~tracebridge.readers.dtrace_printouts` says;
one aggregation makes the profile (see :func:`build`) and those not keyed
by stacks are also kept as tables.  Records stream from :func:`parse` into
:class:`_Printouts`, which keeps per aggregation only its distinct keys.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from sys import intern

from tracebridge.readers.kinst_sites import KinstSites
from tracebridge.readers.dtrace_frames import strip_offsets
from tracebridge.readers.dtrace_printouts import Series
from tracebridge.readers.dtrace_scan import END, OTHER, StackTable, scanner, stack_tuples
from tracebridge.support.errors import EmptyInput, excerpt, note
from tracebridge.readers.options import Loaded, LoadOptions
from tracebridge.readers.source import Source
from tracebridge.profile.model import C, Frame, Metadata, Profile

_HEADER = re.compile(r"^CPU +ID +FUNCTION:NAME\s*$")
_PROBE = re.compile(r"^ *\d+ +\d+ +[^\s:]*:\S+(?: .*)?$")  # up to the first `:` in one way: linear time
_QUANT_HEADER = re.compile(r"^ *(?:value|key) +-+ Distribution -+ +count *$")
# "%16lld " then the bar (`@`, spaces, or UTF-8 blocks; `|` placed by sign), then "%-9lld".
_QUANT_ROW = re.compile(r"^ *(?:(<|>=) *)?(-?\d{1,20}) [^|\d]*\|[^\d-]*?(-?\d{1,20}) *$")  # one way per space
# DTrace prints 64-bit values: at most 20 digits.  (Longer runs are no numbers, and int() refuses
# strings of over 4300 digits with a ValueError.)
_INT = re.compile(r"^-?\d{1,20}$")
#: Numbers a firing prints after its stack, on the line after the frames: ``trace(arg0)`` as
#: ``" %16lld"`` (``" %8d"``...) per value, ``printf("%d\n", arg0)`` as it says.  (No blank line
#: comes before them, unlike before an aggregation's count.)
_TRACED_VALUES = re.compile(r"^\s*-?\d{1,20}(?:\s+-?\d{1,20})*\s*$")
#: A symbol as the linker keeps it: a C identifier, or a legacy Rust symbol (``$``, ``.``) that
#: could not be demangled because DTrace cut it at ``strsize``.
_SYMBOL = re.compile(r"[A-Za-z_.$][A-Za-z0-9_.$]*")
_NOISE = ("dtrace: ", "^C")

#: Scalar value kinds that do not add up (so are not samples by default).
NOT_ADDITIVE = ("avg", "min", "max")


@dataclass(frozen=True)
class Bucket:
    """One printed histogram row: ``label`` as printed, ``low`` its lower bound (None for ``< N``)."""

    label: str
    low: int | None
    count: int


@dataclass(frozen=True)
class Histogram:
    """The buckets of one ``quantize``-family value, as DTrace printed them.

    ``kind`` is inferred from the rows (the output does not say): powers of
    two without a ``< N`` or ``>= N`` row are ``quantize``, equal steps
    ``lquantize``, anything else ``llquantize``.
    """

    kind: str
    buckets: tuple[Bucket, ...]

    @property
    def total(self) -> int:
        return sum(b.count for b in self.buckets)

    def __add__(self, other: Histogram) -> Histogram:
        """Two printouts of one histogram added up, bucket by bucket."""
        if [b.label for b in self.buckets] == [b.label for b in other.buckets]:
            return Histogram(self.kind, tuple(Bucket(a.label, a.low, a.count + b.count)
                                              for a, b in zip(self.buckets, other.buckets)))
        counts: dict[tuple[str, int | None], int] = {}
        for bucket in (*self.buckets, *other.buckets):
            counts[bucket.label, bucket.low] = counts.get((bucket.label, bucket.low), 0) + bucket.count
        order = sorted(counts, key=lambda b: (b[1] is not None, b[0].startswith(">="), b[1] or 0))
        return Histogram(self.kind, tuple(Bucket(label, low, counts[label, low]) for label, low in order))


@dataclass
class AggregationRow:
    """One entry: its string and integer keys as frames (``probefunc`` demangled), and its value."""

    keys: tuple[Frame, ...]
    value: int | Histogram


@dataclass
class Aggregation:
    """One printed aggregation whose keys are not stacks (``@[probefunc] = quantize(x)``)."""

    source: str
    line: int
    #: ``count``/``sum``/``avg``/``min``/``max`` (from ``--value-kind``) or the histogram kind.
    kind: str
    rows: list[AggregationRow] = field(default_factory=list)
    #: Place in print order, from 1, as ``--aggregation N`` counts (stack aggregations too).
    number: int = 1

    @property
    def histograms(self) -> bool:
        return bool(self.rows) and isinstance(self.rows[0].value, Histogram)


@dataclass
class _Record:
    """Raw text of one aggregation entry or traced firing, before naming."""

    line: int
    keys: list[str]
    frames: list[str]
    value: int | Histogram
    #: A blank line came before it: a scalar row here starts a new printed aggregation.
    after_blank: bool
    #: A traced firing (one sample), not an aggregation entry: the same stack may come again.
    traced: bool = False
    #: Probe lines (``CPU ID FUNCTION:NAME`` firings) before it: what a ``tick`` firing printed shares one.
    firings: int = 0


def sniff(source: Source) -> bool:
    for line in source.head.split("\n"):
        if not line.strip() or line.startswith(_NOISE):
            continue
        if _HEADER.match(line) or _QUANT_HEADER.match(line):
            return True
        stripped = line.strip()
        if not line[0].isspace():  # only a frame printed with `-x stackindent=0` starts a capture at column 0
            return " " not in stripped and ("`" in stripped or stripped.startswith("0x"))
        if "`" in stripped or stripped.startswith("0x") or _INT.match(stripped):
            return True
        if line.startswith("  ") and _INT.match(stripped.rsplit(None, 1)[-1]):
            return True
    return False


def read(source: Source, options: LoadOptions) -> Loaded:
    plain = options.printouts != "each" and options.aggregation in (None, 1)
    loaded = _read_plain_stacks(source, options) if plain else None
    if loaded is None:
        loaded = build(source, parse(source), options)
    return loaded


def _read_plain_stacks(source: Source, options: LoadOptions) -> Loaded | None:
    """The common case at C speed: only ``@[stack(), ...] = count()`` entries, or None.

    A 25 MB capture is half a million lines, and looking at each in Python
    is most of the cost.  Each block of bytes (see
    :meth:`~tracebridge.readers.source.Source.byte_blocks`: a capture of
    gigabytes is streamed) is scanned by :mod:`~tracebridge.readers.dtrace_scan`,
    natively when the core is built: frames and entries are interned there,
    and only the entries found, the distinct frame texts (a few thousand once
    offsets are cut) and the lines that are neither frames nor counts come
    back here.  Those may be probe lines whose firings traced nothing (a
    ``tick`` clause's ``printa``: each starts the next printout), the
    ``CPU ID FUNCTION:NAME`` header and ``dtrace:`` notes; anything else
    (keys, histograms, traced stacks, names with spaces, bytes outside
    printable ASCII) returns None for :func:`parse`, as does whatever would
    make this more than one aggregation (:class:`_Printouts`).  An entry
    printed again (offsets and all) before any probe line starts the next
    printout (one printout's entries are unique).  Printouts add up by entry
    as printed, as :func:`build` adds them up; the profile's stacks are their
    cut frames.
    """
    table = StackTable(keep_offsets=options.read_offsets)
    scan = scanner()
    series: Series[int] = Series({}, options.printouts)
    found, counts = table.found, table.counts
    firings = 0
    after_probe = False
    for _, block in source.byte_blocks():
        pos = 0
        while True:
            status, pos, after_probe = scan(block, pos, after_probe, table)
            if found:
                if firings and (len(set(found)) < len(found) or not series.entries.isdisjoint(found)):
                    return None  # printed twice after one probe line: a second aggregation
                series.extend(found, counts, found)
                found.clear()
                counts.clear()
            if status == END:
                break
            if status != OTHER:
                return None
            newline = block.find(b"\n", pos)
            end = newline if newline >= 0 else len(block)
            probe = _between_entries(block[pos:end].decode("ascii"))
            if probe is None or (probe and (table.pending or (not firings and table.stacks))):
                return None  # parse reads it (or says what is wrong)
            if probe:
                firings += 1
                series.end()
                after_probe = True
            pos = end + 1 if newline >= 0 else end
    if not table.stacks or table.pending:
        return None
    series.tell(source.path, "the stack aggregation")
    profile = _new_profile(source, options.value_kinds[0])
    _add_scanned(profile, table, series.result(), options)
    return Loaded(profile)


def _between_entries(line: str) -> bool | None:
    """What :func:`parse` makes of a line between plain entries: True a probe line, False one it
    skips (header, ``dtrace:`` note), None anything else (checked in parse's order)."""
    stripped = line.strip()
    indent = len(line) - len(line.lstrip())
    if _is_frame(stripped, indent):
        return None
    if _INT.match(stripped) or _QUANT_HEADER.match(line):
        return None
    if _PROBE.match(line):
        return True
    return False if _HEADER.match(line) or line.startswith(_NOISE) else None


def _add_scanned(profile: Profile, table: StackTable, result: dict[int, int], options: LoadOptions) -> None:
    """The scanned entries of ``result`` (entry id -> count) into ``profile``, each cut frame named once.

    Entries add up by their cut stack first (a few thousand, against tens
    of thousands of entries), then by frames.  Frame ids are given in the
    order of the sorted texts, as :func:`build` gives them (the same capture
    read by :func:`parse` has the same ids).
    """
    stack_of = array("i", table.stack_of)
    totals: dict[int, int] = {}
    for entry, count in result.items():
        stack = stack_of[entry]
        totals[stack] = totals.get(stack, 0) + count
    stacks = [table.stacks[stack] for stack in totals]
    cuts = table.cuts
    used = range(len(cuts)) if len(stacks) == len(table.stacks) else set(array("i", b"".join(stacks)))
    names = sorted(cuts[i] for i in used)
    named = dict(zip(names, map(profile.intern, options.namer.frames(names))))
    frame_of = array("i", [named.get(text, -1) for text in cuts])
    if options.images:
        _observe_entries(options, table)
    add = profile.add_ids
    for stack, count in zip(stack_tuples(stacks, frame_of.tobytes()), totals.values()):
        add(stack, count)


def _observe_entries(options: LoadOptions, table: StackTable) -> None:
    """Each distinct frame text by role (first printed in an entry, or after), for the evidence that the modules fit."""
    leaves: set[int] = set()
    callers: set[int] = set()
    for printed in table.entries:
        ids = array("i", printed)
        leaves.add(ids[0])
        callers.update(ids[1:])
    texts = table.texts
    options.namer.observe([texts[i] for i in sorted(leaves)], [texts[i] for i in sorted(callers)])


def _new_profile(source: Source, kind: str) -> Profile:
    """What the weights count: ``count()`` samples (or calls), a histogram the values it
    recorded (``quantize`` of latencies: one per call); a ``sum()`` is named after its kind."""
    unit = "samples" if kind == "count" else "values" if kind.endswith("quantize") else kind
    return Profile(Metadata(source=source.path, event="samples" if kind == "count" else kind, unit=unit))


def _frame_ids(profile: Profile, texts: dict[str, str], options: LoadOptions) -> dict[str, int]:
    """Frame id for each raw text; ``texts`` maps it to the text to name (offset cut or not)."""
    # Sorted, not set order: frame ids (and so speedscope's frame list) must not
    # depend on the interpreter's string hashing.
    names = sorted(set(texts.values()))
    interned = {name: profile.intern(frame) for name, frame in zip(names, options.namer.frames(names))}
    return {text: interned[name] for text, name in texts.items()}


class _Lines:
    """The lines of a source as ``(number, line)``, streamed, with a look at the next one (all parse needs)."""

    def __init__(self, source: Source):
        self._lines = source.lines()
        self._next = next(self._lines, None)

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> tuple[int, str]:
        item = self._next
        if item is None:
            raise StopIteration
        self._next = next(self._lines, None)
        return item

    def peek(self) -> str | None:
        return None if self._next is None else self._next[1]


def parse(source: Source) -> Iterator[_Record]:
    """The records of the text as they come; raise InputError (with the line) on anything unrecognised.

    The text is streamed, and the firings of a traced run are counted per
    stack as they come (given out when the run ends), so a long traced
    capture takes the memory of its distinct stacks.
    """
    lines = _Lines(source)
    records: list[_Record] = []  # complete, not yet given out
    traced_run: dict[tuple[str, ...], _Record] = {}  # stack -> its record, in this run of traced firings
    keys: list[str] = []
    frames: list[str] = []
    start = 0          # line number (1-based) where the pending record began
    traced = 0         # line of the pending traced firing (0: none); its stack follows it directly
    gap = 0            # index in `frames` after the last blank line
    after_gap = 0      # the line after the last blank line
    earlier_gap = 0    # `gap` and `after_gap` as they were before the last run of blank lines
    after_earlier = 0
    blanks = 0         # blank lines in a row just before this line
    frame_indent = 0   # the indent of the last frame (stackindent)
    quiet_run = False  # quiet firings (`dtrace -q`) with no blank line since
    blank = True       # a blank line came since the last record (starts a new table)
    firings = 0        # probe lines so far

    def emit(value: int | Histogram, line: int) -> None:
        nonlocal keys, frames, blank, gap
        records.extend(traced_run.values())
        traced_run.clear()
        records.append(_Record(line, keys, frames, value, blank, firings=firings))
        keys, frames, blank, gap = [], [], False, 0

    def end_traced(upto: int) -> None:
        """A traced firing is one sample of the stack printed under it."""
        nonlocal frames, traced, gap, start
        if frames[:upto]:
            stack = tuple(frames[:upto])
            record = traced_run.get(stack)
            if record is None:
                record = traced_run[stack] = _Record(traced, [], frames[:upto], 0, False, traced=True,
                                                     firings=firings)
            record.value += 1
        if gap and upto == gap:  # what follows (an aggregation entry) began after the blank line
            start = after_gap
        frames, traced, gap = frames[upto:], 0, 0

    for i, line in lines:
        if records:
            yield from records
            records.clear()
        stripped = line.strip()
        if not stripped:
            if traced and not frames:  # the firing traced no stack
                traced = 0
            quiet_run = False
            if not blanks:
                earlier_gap, after_earlier = gap, after_gap
            blanks += 1
            blank, gap, after_gap = True, len(frames), i + 1
            continue
        blanks_before, blanks = blanks, 0
        indent = len(line) - len(line.lstrip())
        if _is_frame(stripped, indent):
            if not frames and not keys:
                start = i
            frames.append(stripped)
            frame_indent = indent
            continue
        if traced and frames and not gap and _TRACED_VALUES.match(line):
            continue  # printed by the firing after its stack: the firing is one sample still
        if _INT.match(stripped):
            if frames and not indent and not traced and (quiet_run or _key_follows(lines.peek())):
                # A quiet firing's value traced after its stack (`dtrace -q`, `stack(); trace(arg0)`:
                # `%lld` at column 0, and the next firing's stack right under it, where entries of
                # `printa("%k%@d\n", @)` have a blank line between them): the firing is one sample.
                traced = start
                end_traced(len(frames))
                quiet_run = True
                continue
            if frames:
                if traced:  # aggregation output after the traced firings: its stack began at the last gap
                    end_traced(gap)
                emit(int(stripped), start)
            elif _key_follows(lines.peek()):  # an integer key (`@[pid, stack()]`, `@[cpu] = quantize(x)`)
                start = start if keys else i
                keys.append(stripped)
            else:  # `@ = count()`: a value with no key at all
                emit(int(stripped), i)
            continue
        if _QUANT_HEADER.match(line):
            if traced:
                # One blank line between frames and the header is the histogram's own (dt_print_quantize
                # starts with a newline): its stack key began after the blank line before those frames.
                # More blank lines (the firing's end, then the header's) leave the frames to the firing.
                own_stack = blanks_before == 1 and gap == len(frames) and earlier_gap
                end_traced(earlier_gap if own_stack else gap)
                if own_stack:
                    start = after_earlier
            emit(_histogram(source, lines, i), start if (keys or frames) else i)
            continue
        if _PROBE.match(line):
            if frames and not traced:
                raise source.error("stack has no count (the capture is cut short here)", start)
            if traced:
                end_traced(len(frames))
            traced = start = i
            firings += 1
            continue
        if _HEADER.match(line) or line.startswith(_NOISE):
            continue
        if traced and frames and gap == len(frames):  # a key after the firing's stack and a blank line
            end_traced(gap)
        if frames and indent == frame_indent + 2 and stripped.startswith("[ ") and stripped.endswith(" ]"):
            continue  # a ustack helper's annotation of the frame above (dt_print_ustack), not a frame
        if indent and frames and not (traced and not gap):  # (what a firing prints after its stack is its own)
            after_stack = _keys_after_stack(line, stripped, indent, lines.peek())
            if after_stack is not None:  # `@[stack(), execname]`: keys (and the value) after the frames
                keys += after_stack[0]
                if after_stack[1] is not None:
                    if traced:
                        end_traced(gap)
                    emit(after_stack[1], start)
                continue
        if indent and not frames:
            # Keys before a stack or a histogram (`@[execname, pid, stack()]`): a string key is indented 2,
            # a number right-aligned; a helper's frame (`(jit) fib`) is neither.
            if (indent == 2 or _INT.match(stripped.split(None, 1)[0])) and _key_follows(lines.peek()):
                start = start if keys else i
                keys += _split_keys(stripped)
                continue
            parts = stripped.rsplit(None, 1)
            if len(parts) == 2 and _INT.match(parts[1]) and not line[-1].isspace():
                keys += _split_keys(parts[0])
                emit(int(parts[1]), i)
                continue
            if indent == 2:  # a string key before a stack or a histogram
                start = start if keys else i
                keys += _split_keys(stripped)
                continue
        if indent:
            if not frames and not keys:
                start = i
            frames.append(stripped)
            frame_indent = indent
            continue
        raise source.error(f"unrecognised line in DTrace output: {excerpt(source.path, stripped)}", i)
    if traced:
        end_traced(len(frames))
    elif frames:
        raise source.error("stack has no count (the capture is cut short here)", start)
    elif keys:
        raise source.error("aggregation key has no value (the capture is cut short here)", start)
    yield from records
    yield from traced_run.values()


def _key_follows(following: str | None) -> bool:
    """Is the line after a lone number or a line of keys a stack frame or a histogram (so it held keys)?"""
    if following is None:
        return False
    return _is_frame(following.strip(), len(following) - len(following.lstrip())) or bool(
        _QUANT_HEADER.match(following))


def _is_frame(stripped: str, indent: int) -> bool:
    """Is this line (stripped, and its indent) a stack frame?  Indented by ``stackindent`` (14, or
    any; a macOS frame may hold a space), or a word alone (``-x stackindent=0``); but a symbol key
    (``"  %-50s"`` of ``sym()``) is indented 2 and has its value on the line, and a ``dtrace:``
    note quoting a symbol starts at column 0."""
    return ("`" in stripped or stripped.startswith("0x")) and (indent not in (0, 2) or " " not in stripped)


def _keys_after_stack(line: str, stripped: str, indent: int, following: str | None) -> tuple[list[str], int | None] | None:
    """The keys printed after a stack key (``@[stack(), execname]``), and the value when on their line.

    A string key prints as ``"  %-50s"`` (indented 2, where frames are
    indented ``stackindent``), an integer key as ``" %16lld"``, and a scalar
    value follows on the same line; a histogram starts on the next (its
    header).  None: the line is no such keys (a frame, for the caller).
    """
    if following is not None and _QUANT_HEADER.match(following):
        return (_split_keys(stripped), None) if indent == 2 or _all_numbers(stripped) else None
    head, _, value = stripped.rpartition(" ")
    if not head or not _INT.match(value) or line[-1].isspace():
        return None
    return (_split_keys(head), int(value)) if indent == 2 or _all_numbers(head) else None


def _all_numbers(text: str) -> bool:
    return all(_INT.match(word) for word in text.split())


def _split_keys(text: str) -> list[str]:
    """Several keys on one line: strings padded to 50 columns, numbers right-aligned in 16 (" %16lld").

    Padding parts the keys by two spaces or more, except where a number fills
    its 16 columns; so a run of numbers is parted at every space.
    """
    keys: list[str] = []
    for part in re.split(r"\s{2,}", text.strip()):
        keys += part.split() if _all_numbers(part) else [part]
    return keys


def _histogram(source: Source, lines: _Lines, header: int) -> Histogram:
    """The rows after the header on line ``header``, up to a blank line."""
    buckets: list[Bucket] = []
    while (following := lines.peek()) is not None and following.strip():
        number, row = next(lines)
        match = _QUANT_ROW.match(row)
        if match is None:
            raise source.error(f"not a histogram row: {excerpt(source.path, row.strip())}", number)
        sign, value, count = match.group(1), int(match.group(2)), int(match.group(3))
        label = f"{sign} {value}" if sign else str(value)
        buckets.append(Bucket(label, None if sign == "<" else value, count))
    if not buckets:
        raise source.error("histogram header with no rows (the capture is cut short here)", header)
    return Histogram(_histogram_kind(buckets), tuple(buckets))


def _histogram_kind(buckets: list[Bucket]) -> str:
    values = [b.low for b in buckets if b.low is not None and not b.label.startswith(">=")]
    # quantize labels every row with its power of two (0 too: 0 & -1 is 0); a `< N` or `>= N` row is
    # lquantize's or llquantize's underflow or overflow bin.
    if len(values) == len(buckets) and all((abs(v) & (abs(v) - 1)) == 0 for v in values):
        return "quantize"
    steps = {b - a for a, b in zip(values, values[1:])}
    return "lquantize" if len(steps) <= 1 else "llquantize"


@dataclass
class _Aggregate:
    """One aggregation as read so far: where it was first printed, what it is, and its printouts."""

    number: int
    line: int
    kind: str
    keyed: bool
    stacks: bool
    #: Traced firings: always added up.
    traced: bool
    series: Series


class _Printouts:
    """Records cut into printouts as they stream by, and the printouts gathered into aggregations.

    One printout's keys are unique, so a key seen again starts the next one;
    so does a change of shape (keys, stacks, histogram or not, traced firing
    or not), and a scalar row after a blank line (a scalar aggregation prints
    no blank lines between its rows, dtrace(1) prints one between
    aggregations).  Traced firings are samples: the same stack again is one
    more of them, and all of them are one aggregation.

    Printouts are of the same aggregation when they are the same place in
    what successive probe firings printed (``  0  64091  :tick-60s`` lines
    before them): the first of each firing's printouts, the second, ... (of
    the same shape).  Before any probe line, stack printouts of one shape that
    follow each other are one aggregation's, while key/value tables stay apart
    (``@avg`` and ``@sum`` of the same keys print alike at ``END``).
    ``--printouts each`` keeps every printout apart.  Only the aggregation that
    can still make the profile and the tables keep their values.
    """

    def __init__(self, options: LoadOptions):
        self.options = options
        self.aggregates: list[_Aggregate] = []
        self._identities: dict[tuple, _Aggregate] = {}
        self._scalar_kinds = iter(options.value_kinds)
        self._kind = "count"
        self.chosen: _Aggregate | None = None
        self.printouts = 0
        self._current: _Aggregate | None = None
        self._shape: tuple | None = None
        self._firings = 0
        self._place = 0
        self._previous: tuple | None = None
        #: Printouts of an aggregation printed before.
        self.repeated = 0
        #: The distinct frame texts printed first in a stack and after, for the evidence that the modules fit.
        self._watched = bool(options.images)
        self.leaves: set[str] = set()
        self.callers: set[str] = set()

    def add(self, record: _Record) -> None:
        key = (tuple(record.keys), tuple(record.frames))
        shape = (len(record.keys), bool(record.frames), isinstance(record.value, Histogram), record.traced)
        current = self._current
        if (current is None or (key in current.series.entries and not record.traced) or shape != self._shape
                or (record.after_blank and not shape[2] and not record.frames)
                or (record.firings != self._firings and not record.traced)):
            self._start(record, shape)
        series = self._current.series
        if series.values is not None and key not in series.values:
            # One string per distinct frame, however many stacks hold it.
            key = (tuple(map(intern, key[0])), tuple(map(intern, key[1])))
        series.add(key, record.value)
        if self._watched and record.frames:
            self.leaves.add(record.frames[0])
            self.callers.update(record.frames[1:])

    def _start(self, record: _Record, shape: tuple) -> None:
        if self._current is not None:
            self._current.series.end()
        self.printouts += 1
        self._shape = shape
        if record.traced:
            identity: tuple = ("traced", shape)
        elif record.firings:
            self._place = self._place + 1 if record.firings == self._firings else 0
            self._firings = record.firings
            identity = ("firing", self._place, shape)
        elif record.frames and self._previous is not None and self._previous[-1] == shape:
            identity = self._previous
        else:
            identity = ("printed", self.printouts, shape)
        self._previous = identity
        aggregate = self._identities.get(identity)
        if aggregate is not None and not record.traced:
            self.repeated += 1
        if aggregate is None or self.options.printouts == "each":
            aggregate = self._identities[identity] = self._new(record)
        self._current = aggregate

    def _new(self, record: _Record) -> _Aggregate:
        """A new aggregation: its kind (``--value-kind`` in print order) and whether it makes the profile."""
        value = record.value
        if isinstance(value, Histogram):
            kind = value.kind
        else:
            kind = self._kind = next(self._scalar_kinds, self._kind)
        number = len(self.aggregates) + 1
        keyed = bool(record.keys or record.frames)
        wanted = self.options.aggregation
        chosen = number == wanted if wanted is not None else (
            self.chosen is None and keyed and kind not in NOT_ADDITIVE)
        # Values are kept for tables (not keyed by stacks) and for the aggregation that makes the profile.
        kept = chosen or not record.frames
        aggregate = _Aggregate(number, record.line, kind, keyed, bool(record.frames), record.traced,
                               Series({} if kept else None, "sum" if record.traced else self.options.printouts))
        if chosen:
            self.chosen = aggregate
        self.aggregates.append(aggregate)
        return aggregate

    def tell(self, source: Source) -> None:
        """Say on standard error how repeated printouts were combined (once every record is in)."""
        given = self.options.printouts
        if given == "each":
            if self.repeated:
                note(f"{source.path}: {self.repeated} printouts repeat an aggregation printed before, each kept "
                     "apart as its own aggregation (--printouts each; choose with --printouts sum|last|each)")
            return
        for aggregate in self.aggregates:
            if aggregate.traced:
                continue
            what = "the stack aggregation" if aggregate.stacks else f"aggregation {aggregate.number}"
            if len(self.aggregates) > 1 and aggregate.stacks:
                what = f"aggregation {aggregate.number} (stacks)"
            aggregate.series.tell(source.path, what)


def _split_hint(aggregates: list[_Aggregate]) -> str:
    """Why stacks may come in several aggregations: an entry whose stack is empty (``ustack()`` in
    a kernel thread) prints a lone value, which reads as a scalar aggregation cutting one in two."""
    kinds = [a.stacks for a in aggregates]
    split = any(not a.keyed and kinds[i - 1] and kinds[i + 1]
                for i, a in enumerate(aggregates[1:-1], 1))
    return (". A lone value between stack entries, as here, is an entry with an empty stack "
            "(ustack() in a kernel thread): it splits one aggregation in two") if split else ""


def build(source: Source, records: Iterator[_Record], options: LoadOptions) -> Loaded:
    """Name the frames; one aggregation becomes the profile, non-stack ones also tables.

    Scalar aggregations take their kinds from ``options.value_kinds`` in the
    order printed (the last kind repeats).  The profile is made of
    ``options.aggregation`` (1-based, in print order) or else of the first
    aggregation with keys whose values add up: counts, sums, histograms
    (their number of values).  Stacks are keys first (``execname`` at the root), then the
    printed frames reversed.  Each aggregation's printouts combine by
    ``options.printouts`` (see :mod:`~tracebridge.readers.dtrace_printouts`).
    """
    printouts = _Printouts(options)
    for record in records:
        printouts.add(record)
    aggregates = printouts.aggregates
    if not aggregates:
        raise EmptyInput(source.path, "holds no stacks and no aggregation values")
    if options.aggregation is not None and not 1 <= options.aggregation <= len(aggregates):
        raise source.error(f"--aggregation {options.aggregation}: it holds {len(aggregates)} aggregation(s)")
    printouts.tell(source)
    stacked = [a for a in aggregates if a.stacks]
    chosen = printouts.chosen
    if options.aggregation is None and len(stacked) > 1 and chosen in stacked:
        note(f"{source.path}: {len(stacked)} aggregations hold stacks (printed from lines "
             f"{', '.join(str(a.line) for a in stacked[:4])}{', ...' if len(stacked) > 4 else ''}); the profile is "
             f"made of aggregation {chosen.number} only (--aggregation N picks another)" + _split_hint(aggregates))
    results = {a.number: a.series.result() for a in aggregates if a.series.values is not None}
    latency = options.aggregation is None and options.value_kinds == ("count",) and _latency_shape(aggregates, results)
    if latency:
        aggregates[1].kind, aggregates[2].kind = "avg", "sum"
        printouts.chosen = aggregates[2]
        note(f"{source.path}: read as the latency template (a quantize, then avg and sum of the same keys): "
             "ranked by aggregation 3, the sum of nanoseconds (--aggregation and --value-kind choose otherwise)")
    chosen = printouts.chosen
    frame_texts = {f for key in results.get(chosen.number, {}) for f in key[1]} if chosen is not None else set()
    key_texts = {k for result in results.values() for key in result for k in key[0]}
    # Without offsets, `f+0x10` and `f+0x24` are one frame: a capture has a few thousand
    # functions but far more (function, offset) pairs, each of which would cost a naming.
    texts = {t: t for t in frame_texts} if options.offsets else strip_offsets(frame_texts)
    texts.update({k: k for k in key_texts if not _INT.match(k)})
    profile = _new_profile(source, chosen.kind if chosen is not None else "count")
    ids = _frame_ids(profile, texts, options)
    options.namer.observe(printouts.leaves, printouts.callers)
    named = {k: profile.frames[ids[k]] for k in key_texts if k in ids}
    for key in sorted(key_texts - named.keys()):
        named[key] = _integer_frame(key)
        ids[key] = profile.intern(named[key])
    if chosen is not None and _counts_calls(chosen, results[chosen.number], named):
        profile.metadata.event = profile.metadata.unit = "calls"
    if latency:
        profile.metadata.event, profile.metadata.unit = "time", "nanoseconds"
    get = ids.__getitem__
    probe_map = options.namer.probe_map
    sites = KinstSites(probe_map) if probe_map is not None else None
    if chosen is not None:
        for (keys, frames), value in results[chosen.number].items():
            at_site = sites.stack([named[k] for k in keys], [profile.frames[get(f)] for f in frames]) if sites else None
            if at_site is not None:
                stack = tuple(map(profile.intern, at_site))
            else:
                stack = tuple(map(get, keys)) + tuple(map(get, reversed(frames)))
            if stack:
                profile.add_ids(stack, value.total if isinstance(value, Histogram) else value)
    aggregations = [
        Aggregation(source.path, a.line, a.kind,
                    [AggregationRow(tuple(named[k] for k in keys), value) for (keys, _), value in
                     results[a.number].items()], a.number)
        for a in aggregates if not a.stacks
    ]
    return Loaded(profile, aggregations)


def _latency_shape(aggregates: list[_Aggregate], results: dict) -> bool:
    """Is this the latency template's output (``@ns`` quantize, ``@avg_ns``, ``@total_ns`` by one key)?

    DTrace prints avg and sum alike, so the shape tells: a ``quantize`` of one key, then two scalar
    tables of exactly its keys, where every key's second value (the average) lies in the span of its
    histogram's buckets and the third (the total) is at least the average.
    """
    if len(aggregates) != 3 or [a.kind for a in aggregates] != ["quantize", "count", "count"]:
        return False
    if any(a.stacks or a.number not in results for a in aggregates):
        return False
    histograms, averages, totals = ({keys: value for (keys, _), value in results[a.number].items()}
                                    for a in aggregates)
    if not histograms or any(len(k) != 1 for k in histograms) or not histograms.keys() == averages.keys() == totals.keys():
        return False
    for key, histogram in histograms.items():
        used = [b.low for b in histogram.buckets if b.count and b.low is not None]
        if not used or not min(used) <= averages[key] <= 2 * max(used) or totals[key] < averages[key]:
            return False
    return True


def _counts_calls(chosen: _Aggregate, result: dict, named: dict[str, Frame]) -> bool:
    """Does this ``count()`` count calls?  Yes when keyed by function names alone (``@[probefunc]``
    of FBT probes, as the count template keys): a profile probe's ``probefunc`` is ``profile-997``,
    ``execname`` keys name no Rust function, and stacks are sampled, so those stay samples."""
    if chosen.kind != "count" or chosen.stacks or not result:
        return False
    frames = [named[k] for keys, _ in result for k in keys]
    # Function names: Rust ones (demangled), a given module's, or symbols (C, cut Rust) beside Rust ones.
    return (any(f.is_rust or f.module is not None for f in frames)
            and all(f.is_rust or f.module is not None or _SYMBOL.fullmatch(f.name) for f in frames))


def _integer_frame(text: str) -> Frame:
    return Frame(None, text, text, None, C, None)
