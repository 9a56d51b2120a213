"""What DTrace prints for aggregations and traced stacks, read back into stacks and tables.

The shapes follow libdtrace's printers (``dt_consume.c``, ``dtrace.c``):

* an aggregation entry prints its keys, then its value, then a newline.
  A string key is ``"  %-50s"``, an integer key or a scalar value
  (``count``/``sum``/``min``/``max``/``avg``) is ``" %16lld"``; a
  ``stack()``/``ustack()`` key starts with a newline and prints one frame
  per line indented ``stackindent`` (14) spaces, leaf first.  So
  ``@[stack()] = count()`` gives a blank line, the frames and the count
  right-aligned on its own line, and ``@[stack(), ustack()]`` a blank line
  between the kernel and the user frames;
* ``quantize``/``lquantize``/``llquantize`` values print a
  ``value  ---- Distribution ---- count`` header and rows
  ``"%16lld |@@@@    %-9lld"`` (``< N`` / ``>= N`` labels at the ends of
  ``lquantize``/``llquantize``), then a blank line;
* traced records (``stack();`` in a clause, not quiet) print
  ``CPU     ID                    FUNCTION:NAME`` once, then per firing
  ``"%3d %6d %32s "`` and the traced data: each such record is one sample.

Plain stack aggregations, by far the largest captures, are read by one
split of the text (:func:`_read_plain_stacks`); everything else line by
line (:func:`parse`).  Frames are named once per distinct text by
:class:`~tracebridge.readers.dtrace_frames.FrameNamer`.  Stacks come out root
first: string and integer keys first (``execname`` as the root), then the
printed frames of all stack keys reversed, so ``@[stack(), ustack()]``
reads user root -> user leaf -> kernel root -> kernel leaf, as the samples
nested.  An output may print several aggregations; one makes the profile
(see :func:`build`) and those not keyed by stacks are also kept as tables.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from itertools import compress

from tracebridge.readers.dtrace_frames import strip_offsets
from tracebridge.support.errors import EmptyInput
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
_OFFSET = re.compile(r"\+0x[0-9a-fA-F]+")
#: A frame the tracer named (`` module`func `` or `` module`func+0xOFF ``), not `` module`0xADDR ``.
_NAMED = re.compile(r"[^\s`]+`(?!0x)[^\s`]+")
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
    two are ``quantize``, equal steps ``lquantize``, anything else
    ``llquantize``.
    """

    kind: str
    buckets: tuple[Bucket, ...]

    @property
    def total(self) -> int:
        return sum(b.count for b in self.buckets)


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
    loaded = _read_plain_stacks(source, options)
    if loaded is None:
        loaded = build(source, parse(source), options)
    return loaded


def _read_plain_stacks(source: Source, options: LoadOptions) -> Loaded | None:
    """The common case at C speed: only ``@[stack(), ...] = count()`` entries, or None.

    A 25 MB capture is half a million lines, and looking at each in Python
    is most of the cost.  Here each block of text (see
    :meth:`~tracebridge.readers.source.Source.blocks`: a capture of gigabytes is
    streamed) is cut at whitespace in one call and the counts are found
    among the tokens; the distinct tokens (a few thousand once offsets are
    gone) are checked after.  Anything that is not frames-then-count (keys,
    histograms, traced firings, names with spaces) leaves a token that is
    neither, and returns None for :func:`parse`.
    """
    profile = _new_profile(source, options.value_kinds[0])
    ids: dict[str, int] = {}
    tail: list[str] = []  # the tokens of an entry that goes on in the next block
    for first, text in source.blocks():
        if first == 1:
            while text.startswith(_NOISE):
                text = text[text.find("\n") + 1:] if "\n" in text else ""
        if options.images:  # named frames with their offsets, before the offsets go (opened: watched)
            options.namer.observe(set(_NAMED.findall(text)), ())
        if not options.read_offsets:
            text = _OFFSET.sub("", text)
        tail = _add_plain_entries(profile, ids, tail + text.split(), options)
        if tail is None:
            return None
    return Loaded(profile) if profile.stacks and not tail else None


#: Most tokens one plain entry may have (a stack is at most a few hundred frames).
_MAX_ENTRY = 1 << 16


def _add_plain_entries(profile: Profile, ids: dict[str, int], tokens: list[str],
                       options: LoadOptions) -> list[str] | None:
    """Add the complete entries of ``tokens``; return the tokens after the last count, or None if not plain."""
    distinct = set(tokens)
    counts = {t for t in distinct if t.isascii() and t.isdigit() and len(t) <= 20}
    frames = distinct - counts
    if any("`" not in f and not f.startswith("0x") for f in frames):
        return None
    ends = list(compress(range(len(tokens)), map(counts.__contains__, tokens)))
    if not ends:
        return tokens if len(tokens) <= _MAX_ENTRY else None
    starts = [0] + [end + 1 for end in ends[:-1]]
    # Every count must close a non-empty run of frames (a number after a number is a key).
    if any(start == end for start, end in zip(starts, ends)):
        return None
    new = frames - ids.keys()
    if new:
        ids.update(_frame_ids(profile, {f: f for f in new}, options))
    if options.images:
        _observe_addresses(options, {tokens[start] for start in starts},
                           set().union(*(tokens[start + 1:end] for start, end in zip(starts, ends))))
    n = ends[-1] + 1
    backwards = list(map(ids.get, reversed(tokens[:n])))  # root-first slices of each entry
    add = profile.add_ids
    for start, end in zip(starts, ends):
        add(tuple(backwards[n - end:n - start]), int(tokens[end]))
    return tokens[n:]


def _observe_addresses(options: LoadOptions, leaves: set[str], callers: set[str]) -> None:
    """The hex frames of the entries, by role, for the evidence that the modules fit (named ones went before)."""
    def addresses(texts: set[str]) -> list[str]:
        return [t for t in texts if t.rpartition("`")[2].startswith("0x")]

    options.namer.observe(addresses(leaves), addresses(callers))


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


def parse(source: Source) -> list[_Record]:
    """Split the text into records; raise InputError (with the line) on anything unrecognised.

    The text is streamed, and the firings of a traced run are counted per
    stack as they come, so a long traced capture takes the memory of its
    distinct stacks.
    """
    lines = _Lines(source)
    records: list[_Record] = []
    traced_run: dict[tuple[str, ...], _Record] = {}  # stack -> its record, in this run of traced firings
    keys: list[str] = []
    frames: list[str] = []
    start = 0          # line number (1-based) where the pending record began
    traced = 0         # line of the pending traced firing (0: none); its stack follows it directly
    gap = 0            # index in `frames` after the last blank line
    blank = True       # a blank line came since the last record (starts a new table)

    def emit(value: int | Histogram, line: int) -> None:
        nonlocal keys, frames, blank, gap
        records.append(_Record(line, keys, frames, value, blank))
        keys, frames, blank, gap = [], [], False, 0
        traced_run.clear()

    def end_traced(upto: int) -> None:
        """A traced firing is one sample of the stack printed under it."""
        nonlocal frames, traced, gap
        if frames[:upto]:
            stack = tuple(frames[:upto])
            record = traced_run.get(stack)
            if record is None:
                record = traced_run[stack] = _Record(traced, [], frames[:upto], 0, False, traced=True)
                records.append(record)
            record.value += 1
        frames, traced, gap = frames[upto:], 0, 0

    for i, line in lines:
        stripped = line.strip()
        if not stripped:
            if traced and not frames:  # the firing traced no stack
                traced = 0
            blank, gap = True, len(frames)
            continue
        indent = len(line) - len(line.lstrip())
        # A frame: indented by stackindent (14, or any), or a word alone (`-x stackindent=0`).
        if ("`" in stripped or stripped.startswith("0x")) and (indent > 2 or " " not in stripped):
            if not frames and not keys:
                start = i
            frames.append(stripped)
            continue
        if _INT.match(stripped):
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
                end_traced(gap)
            emit(_histogram(source, lines, i), start if (keys or frames) else i)
            continue
        if _PROBE.match(line):
            if frames and not traced:
                raise source.error("stack has no count (the capture is cut short here)", start)
            if traced:
                end_traced(len(frames))
            traced = start = i
            continue
        if _HEADER.match(line) or line.startswith(_NOISE):
            continue
        if indent and not frames:
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
            continue
        raise source.error(f"unrecognised line in DTrace output: {stripped[:60]!r}", i)
    if traced:
        end_traced(len(frames))
    elif frames:
        raise source.error("stack has no count (the capture is cut short here)", start)
    elif keys:
        raise source.error("aggregation key has no value (the capture is cut short here)", start)
    return records


def _key_follows(following: str | None) -> bool:
    """Is the line after a lone number a stack frame or a histogram (so the number was a key)?"""
    if following is None or not following[:1].isspace():
        return False
    stripped = following.strip()
    return "`" in stripped or stripped.startswith("0x") or bool(_QUANT_HEADER.match(following))


def _split_keys(text: str) -> list[str]:
    """Several string keys on one line, each padded to 50 columns."""
    return re.split(r"\s{2,}", text.strip())


def _histogram(source: Source, lines: _Lines, header: int) -> Histogram:
    """The rows after the header on line ``header``, up to a blank line."""
    buckets: list[Bucket] = []
    while (following := lines.peek()) is not None and following.strip():
        number, row = next(lines)
        match = _QUANT_ROW.match(row)
        if match is None:
            raise source.error(f"not a histogram row: {row.strip()[:60]!r}", number)
        sign, value, count = match.group(1), int(match.group(2)), int(match.group(3))
        label = f"{sign} {value}" if sign else str(value)
        buckets.append(Bucket(label, None if sign == "<" else value, count))
    if not buckets:
        raise source.error("histogram header with no rows (the capture is cut short here)", header)
    return Histogram(_histogram_kind(buckets), tuple(buckets))


def _histogram_kind(buckets: list[Bucket]) -> str:
    values = [b.low for b in buckets if b.low is not None and not b.label.startswith(">=")]
    if all(v == 0 or (abs(v) & (abs(v) - 1)) == 0 for v in values) and not any(b.low is None for b in buckets):
        return "quantize"
    steps = {b - a for a, b in zip(values, values[1:])}
    return "lquantize" if len(steps) <= 1 else "llquantize"


def _group(records: list[_Record]) -> list[list[_Record]]:
    """Records cut into the printed aggregations.

    One aggregation's keys are unique, so a key seen again starts the next
    one; so does a change of shape (keys, stacks, histogram or not, traced
    firing or not), and a scalar row after a blank line (a scalar aggregation
    prints no blank lines between its rows, dtrace(1) prints one between
    aggregations).  Traced firings are samples: the same stack again is one
    more of them.
    """
    groups: list[list[_Record]] = []
    seen: set[tuple] = set()
    shape = None
    for record in records:
        key = (tuple(record.keys), tuple(record.frames))
        record_shape = (len(record.keys), bool(record.frames), isinstance(record.value, Histogram), record.traced)
        if (not groups or (key in seen and not record.traced) or record_shape != shape
                or (record.after_blank and not record_shape[2] and not record.frames)):
            groups.append([])
            seen = set()
            shape = record_shape
        groups[-1].append(record)
        seen.add(key)
    return groups


def build(source: Source, records: list[_Record], options: LoadOptions) -> Loaded:
    """Name the frames; one aggregation becomes the profile, non-stack ones also tables.

    Scalar aggregations take their kinds from ``options.value_kinds`` in the
    order printed (the last kind repeats).  The profile is made of
    ``options.aggregation`` (1-based, in print order) or else of the first
    aggregation with keys whose values add up: counts, sums, histograms
    (their number of values).  Stacks are keys first (``execname`` at the root), then the
    printed frames reversed.
    """
    if not records:
        raise EmptyInput(source.path, "holds no stacks and no aggregation values")
    groups = _group(records)
    kinds: list[str] = []
    scalars = iter(options.value_kinds)
    kind = "count"
    for group in groups:
        if isinstance(group[0].value, Histogram):
            kinds.append(group[0].value.kind)
        else:
            kind = next(scalars, kind)
            kinds.append(kind)
    if options.aggregation is not None:
        if not 1 <= options.aggregation <= len(groups):
            raise source.error(f"--aggregation {options.aggregation}: it holds {len(groups)} aggregation(s)")
        chosen = options.aggregation - 1
    else:
        chosen = next((i for i, (k, g) in enumerate(zip(kinds, groups))
                       if k not in NOT_ADDITIVE and (g[0].keys or g[0].frames)), None)
    frame_texts: set[str] = set().union(*(r.frames for r in records))
    key_texts: set[str] = set().union(*(r.keys for r in records))
    # Without offsets, `f+0x10` and `f+0x24` are one frame: a capture has a few thousand
    # functions but far more (function, offset) pairs, each of which would cost a naming.
    texts = {t: t for t in frame_texts} if options.offsets else strip_offsets(frame_texts)
    texts.update({k: k for k in key_texts if not _INT.match(k)})
    profile = _new_profile(source, kinds[chosen] if chosen is not None else "count")
    ids = _frame_ids(profile, texts, options)
    options.namer.observe({r.frames[0] for r in records if r.frames},
                          {f for r in records for f in r.frames[1:]})
    named = {k: profile.frames[ids[k]] for k in key_texts if k in ids}
    for key in sorted(key_texts - named.keys()):
        named[key] = _integer_frame(key)
        ids[key] = profile.intern(named[key])
    get = ids.__getitem__
    if chosen is not None:
        for record in groups[chosen]:
            value = record.value
            stack = tuple(map(get, record.keys)) + tuple(map(get, reversed(record.frames)))
            if stack:
                profile.add_ids(stack, value.total if isinstance(value, Histogram) else value)
    aggregations = [
        Aggregation(source.path, group[0].line, kind,
                    [AggregationRow(tuple(named[k] for k in r.keys), r.value) for r in group], number)
        for number, (group, kind) in enumerate(zip(groups, kinds), start=1) if not group[0].frames
    ]
    return Loaded(profile, aggregations)


def _integer_frame(text: str) -> Frame:
    return Frame(None, text, text, None, C, None)
