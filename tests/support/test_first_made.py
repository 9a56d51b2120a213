"""outputs.first_made: the first part made before the block (its errors raised there), the parts closed after it."""

from __future__ import annotations

import pytest

from tracebridge.support.outputs import first_made


def test_the_first_part_is_made_on_entry_and_all_come_in_order():
    made = []

    def parts():
        for part in ("a", "b", "c"):
            made.append(part)
            yield part

    with first_made(parts()) as again:
        assert made == ["a"]
        assert list(again) == ["a", "b", "c"]


def test_no_parts_give_none_and_an_error_making_the_first_is_raised_before_the_block():
    with first_made(part for part in ()) as again:
        assert list(again) == []

    def failing():
        raise ValueError("unreadable")
        yield

    entered = []
    with pytest.raises(ValueError, match="unreadable"):
        with first_made(failing()):
            entered.append(True)
    assert entered == []


def test_the_parts_are_closed_when_the_block_fails_before_reading_them():
    closed = []

    def parts():
        try:
            yield 1
            yield 2
        finally:
            closed.append(True)

    with pytest.raises(OSError):
        with first_made(parts()):
            raise OSError("the output cannot be opened")
    assert closed == [True]
