"""Two folded texts merged (render.folded.merge_folded): the native merge (src/native/folded_text.h) and the pure
one give the text of the two profiles folded together, and the native one hands the pure one what it cannot read."""

from __future__ import annotations

import io
import re

import pytest
from hypothesis import given, settings, strategies as st

from tracebridge.render.folded import merge_folded, write_folded_parts

KEYS = st.text(alphabet=st.sampled_from(["a", "b", ";", "\\", " ", "é", "\U0001f600", "\x7f"]), max_size=5)


def folded(counts: dict[str, int]) -> str:
    return "".join(f"{key} {counts[key]}\n" for key in sorted(counts))


def pure(first: str, second: str, monkeypatch) -> str:
    with monkeypatch.context() as patch:
        patch.setattr("tracebridge.support.native.core", None)
        return merge_folded(first, second)


@settings(max_examples=300, deadline=None)
@given(first=st.dictionaries(KEYS, st.integers(0, 10 ** 18 - 1), max_size=8),
       second=st.dictionaries(KEYS, st.integers(0, 10 ** 18 - 1), max_size=8))
def test_generated_texts_merge_as_their_counts_added(native_core, first, second):
    expected = folded({key: first.get(key, 0) + second.get(key, 0) for key in {*first, *second}})
    assert native_core.folded_merge(folded(first), folded(second)) == expected
    assert merge_folded(folded(first), folded(second)) == expected
    encoded = expected.encode()   # the same texts in UTF-8, as folded_bytes writes them
    assert native_core.folded_merge(folded(first).encode(), folded(second).encode()) == encoded
    assert merge_folded(folded(first).encode(), folded(second).encode()) == encoded


@pytest.mark.parametrize("first, second", [
    ("a 1\nb 2\n", "a x\n"),                       # not digits
    ("a 1\n", "a 1234567890123456789\n"),          # more than 18 digits
    ("b 1\na 2\n", ""),                            # keys not ascending
    ("a 1\na 2\n", ""),                            # a key twice
    ("a 1", ""),                                   # no newline
    ("1\n", ""),                                   # no key
    ("a 1\n", "b \n"),                             # no count
])
@pytest.mark.parametrize("encoded", [False, True], ids=["str", "bytes"])
def test_lines_the_native_merge_cannot_read_go_to_the_pure_merge(native_core, monkeypatch, first, second, encoded):
    if encoded:
        first, second = first.encode(), second.encode()
    assert native_core.folded_merge(first, second) is None
    try:
        expected = pure(first, second, monkeypatch)
    except ValueError as error:   # int() of what is not a count: the same error either way
        with pytest.raises(ValueError, match=re.escape(str(error))):
            merge_folded(first, second)
    else:
        assert merge_folded(first, second) == expected and type(expected) is type(first)


def test_the_merge_takes_two_str_or_two_bytes(native_core):
    for arguments in ((b"a 1\n", ""), ("a 1\n", b""), (1, 2), (b"a 1\n", 2), ("a 1\n", "", print), (b"", b"", 1)):
        with pytest.raises(TypeError):   # a writer takes bytes texts and must be callable
            native_core.folded_merge(*arguments)
    # any bytes-like object: the second half's text is read where the other process left it
    assert native_core.folded_merge(bytearray(b"a 1\n"), memoryview(b"a 2\nb 1\n")) == b"a 3\nb 1\n"
    assert native_core.folded_merge(b"a 1\nab 2\n", b"a;b 1\nab 3\n") == b"a 1\na;b 1\nab 5\n"
    assert native_core.folded_merge("\U0001f600 1\n".encode(), "é 2\n".encode()) == "é 2\n\U0001f600 1\n".encode()
    assert native_core.folded_merge("", "") == "" and native_core.folded_merge("a;b 3\n", "") == "a;b 3\n"
    assert native_core.folded_merge("a 1\nab 2\n", "a;b 1\nab 3\n") == "a 1\na;b 1\nab 5\n"
    assert native_core.folded_merge("\U0001f600 1\n", "é 2\n") == "é 2\n\U0001f600 1\n"


@settings(max_examples=100, deadline=None)
@given(first=st.dictionaries(KEYS, st.integers(0, 10 ** 18 - 1), max_size=8),
       second=st.dictionaries(KEYS, st.integers(0, 10 ** 18 - 1), max_size=8))
def test_the_merge_written_in_pieces_is_the_merge(native_core, first, second):
    first, second = folded(first).encode(), folded(second).encode()
    pieces = []
    assert native_core.folded_merge(first, memoryview(second), pieces.append) is True
    assert b"".join(pieces) == merge_folded(first, second) and all(pieces)


def test_the_merge_is_written_a_megabyte_at_a_time(native_core):
    line = b"k" * 1000 + b" 1\n"
    first = b"".join(b"%07d" % i + line for i in range(0, 3000, 2))
    second = b"".join(b"%07d" % i + line for i in range(1, 3000, 2))
    pieces = []
    assert native_core.folded_merge(first, second, pieces.append) is True
    assert b"".join(pieces) == merge_folded(first, second) and len(pieces) == 3
    assert all(len(piece) <= 1 << 20 for piece in pieces) and len(pieces[0]) > (1 << 20) - len(line) - 7
    long = b"x" * (3 << 20) + b" 5\n"   # a line longer than a piece: a piece of its own
    pieces.clear()
    assert native_core.folded_merge(b"a 1\n", long, pieces.append) is True
    assert pieces == [b"a 1\n", long]
    pieces.clear()
    assert native_core.folded_merge(b"", b"", pieces.append) is True and pieces == []


def test_what_the_writer_raises_is_raised(native_core):
    def refuse(piece):
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        native_core.folded_merge(b"a 1\n", b"b 2\n", refuse)


class _Unseekable(io.BytesIO):
    """An output that cannot be rewound (a pipe, standard output)."""

    def seekable(self) -> bool:
        return False


def _texts(*texts: bytes, closed: list | None = None):
    try:
        yield from texts
    finally:
        if closed is not None:
            closed.append(True)


@pytest.mark.parametrize("output", [io.BytesIO, _Unseekable])
def test_the_parts_are_written_as_one_text(each_path, output):
    first, second = b"a 1\nb;c 2\n", b"a 2\nb 1\n"
    for texts, expected in (([first], first), ([first, second], b"a 3\nb 1\nb;c 2\n"),
                            ([first, memoryview(second)], b"a 3\nb 1\nb;c 2\n")):
        out, closed = output(), []
        out.write(b"before ")
        write_folded_parts(out, _texts(*texts, b"never read", closed=closed))
        assert out.getvalue() == b"before " + expected and closed == [True]   # the other process let go


@pytest.mark.parametrize("output", [io.BytesIO, _Unseekable])
def test_a_merge_the_native_core_cannot_finish_is_taken_back_and_written_by_the_pure_one(each_path, output):
    """Past a megabyte of merged lines a count the native merge does not read: what it wrote is taken back."""
    first = b"".join(b"a%07d 1\n" % i for i in range(200_000))
    second = b"a5000000 1\nz 1234567890123456789\n"   # its second line read once the first's lines are merged
    out, writes = output(), []
    out.write(b"before ")
    real_write = out.write
    out.write = lambda data: writes.append(len(data)) or real_write(data)
    write_folded_parts(out, _texts(first, second))
    assert out.getvalue() == b"before " + first + second
    assert len(writes) == (3 if each_path == "native" and output is io.BytesIO else 1)   # a piece, then the whole


def test_a_merge_taken_back_from_a_device_is_written_again(each_path):
    """`-o /dev/null`: a device can be rewound, not cut; the whole merge is written again over what was written
    (natively: the megabytes the native merge wrote before the count it does not read, then the whole)."""
    first = b"".join(b"a%07d 1\n" % i for i in range(200_000))
    second = b"a5000000 1\nz 1234567890123456789\n"
    expected = merge_folded(first.decode(), second.decode()).encode()
    with open("/dev/null", "wb") as device:
        written: list[int] = []

        class Recorded(io.RawIOBase):
            def write(self, data):
                written.append(len(data))
                return device.write(data)

            def seekable(self):
                return True

            def seek(self, offset, whence=0):
                return device.seek(offset, whence)

            def tell(self):
                return device.tell()

        write_folded_parts(Recorded(), _texts(first, second))
    assert written[-1] == len(expected)
    assert written[:-1] if each_path == "native" else len(written) == 1


def test_a_merge_taken_back_that_outran_the_whole_merge_is_cut(each_path, tmp_path):
    """What the native merge wrote before a line it does not read (a negative count) may be longer than the whole
    merge the pure one writes (those counts taken off): the file is cut to the whole merge."""
    first = b"".join(b"a%07d 1000000\n" % i for i in range(200_000))
    second = b"b 1\n" + b"".join(b"a%07d -1000000\n" % i for i in range(200_000))
    expected = merge_folded(first.decode(), second.decode()).encode()
    with open(tmp_path / "out", "wb") as out:
        out.write(b"before ")
        write_folded_parts(out, _texts(first, second))
    assert len(expected) < len(first) and (tmp_path / "out").read_bytes() == b"before " + expected
