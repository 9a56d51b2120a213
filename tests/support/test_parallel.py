"""split_map's two-process path: same answers, same order, and a failing child changes nothing.

Commands only split at 20k functions, more than any committed module has, so
these tests lower the threshold to run the forked path on the fixtures.
"""

from __future__ import annotations

import os
import time

import pytest

from fixture_paths import MODULES
from tracebridge.support import parallel
from tracebridge.cli import main

pytestmark = pytest.mark.skipif(not hasattr(os, "fork") or parallel.usable_cpus() < 2,
                                reason="split_map runs in one process here")


def test_halves_come_back_in_order(monkeypatch):
    monkeypatch.setattr(parallel, "MIN_ITEMS", 2)
    parent = os.getpid()

    def work(part):
        return [(x * x, os.getpid() == parent) for x in part]

    result = parallel.split_map(work, list(range(101)))
    assert [value for value, _ in result] == [x * x for x in range(101)]
    # The first half was computed here, the second in the child.
    assert all(here for _, here in result[:50]) and not any(here for _, here in result[50:])


def test_halves_are_cut_where_the_costs_balance(monkeypatch):
    """90 cheap items then 10 that cost 10 each: the first process takes the cheap ones and one more."""
    monkeypatch.setattr(parallel, "MIN_ITEMS", 2)
    parent = os.getpid()

    def work(part):
        return [(x, os.getpid() == parent) for x in part]

    result = parallel.split_map(work, list(range(100)), cost=lambda x: 10 if x >= 90 else 1)
    assert [x for x, _ in result] == list(range(100))
    assert [x for x, here in result if here] == list(range(91))


def test_long_lists_are_cut_where_sampled_costs_balance(monkeypatch):
    """Of a long list only every n-th item's cost is asked: here every 4th, whose cost is 1 up to 60, then 3."""
    monkeypatch.setattr(parallel, "COST_SAMPLES", 25)
    asked = []

    def cost(x):
        asked.append(x)
        return 1 if x < 60 else 3

    assert parallel.cost_middle(list(range(100)), cost) == 72  # 15 + 3 * 3 of the 15 + 3 * 10 sampled
    assert asked == list(range(0, 100, 4))
    assert parallel.cost_middle(list(range(101)), lambda x: 1) == 55  # every 5th: 11 of the 21 sampled
    assert parallel.cost_middle(list(range(99)), lambda x: 1) == 52  # every 4th: 13 of 25
    assert parallel.cost_middle(list(range(97)), lambda x: x // 96) == 97  # every 4th: all of 1 cost, the end


@pytest.mark.parametrize("middle", [-5, 0, 30, 100, 120])
def test_halves_are_cut_where_the_caller_says(monkeypatch, middle):
    """A ``middle`` outside the items is taken as their start or end: one process then does it all."""
    monkeypatch.setattr(parallel, "MIN_ITEMS", 2)
    parent = os.getpid()

    def work(part):
        return [(x, os.getpid() == parent) for x in part]

    result = parallel.split_map(work, list(range(100)), middle=lambda items: middle)
    assert [x for x, _ in result] == list(range(100))
    assert [x for x, here in result if here] == list(range(min(max(middle, 0), 100)))


@pytest.mark.parametrize("threshold", [2, 10**9])
def test_columns_are_joined_column_by_column(monkeypatch, threshold):
    """split_columns: each half answers a tuple of lists; the whole answer is each list joined, in order."""
    monkeypatch.setattr(parallel, "MIN_ITEMS", threshold)
    parent = os.getpid()

    def work(part):
        return [x * x for x in part], [os.getpid() == parent for _ in part], [str(x) for x in part]

    squares, here, names = parallel.split_columns(work, list(range(101)), middle=lambda items: 40)
    assert squares == [x * x for x in range(101)] and names == [str(x) for x in range(101)]
    assert here == [True] * 101 if threshold > 101 else here == [True] * 40 + [False] * 61


def test_a_failing_child_is_redone_in_the_parent(monkeypatch):
    monkeypatch.setattr(parallel, "MIN_ITEMS", 2)
    parent = os.getpid()

    def work(part):
        if os.getpid() != parent:
            raise RuntimeError("child only")
        return [x + 1 for x in part]

    assert parallel.split_map(work, list(range(10))) == list(range(1, 11))


@pytest.mark.parametrize("command", [["symbols", "-f", "json"], ["symbols", "-f", "csv"],
                                     ["symbols", "-f", "json", "--rust-only", "--sort", "name"],
                                     ["inspect", "-f", "json"]])
def test_commands_answer_the_same_split_or_not(monkeypatch, capsys, command):
    module = str(MODULES / "rem_legacy_fp.ko")
    outputs = []
    for threshold in (10**9, 2):
        monkeypatch.setattr(parallel, "MIN_ITEMS", threshold)
        assert main([*command, module]) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1] and len(outputs[0]) > 100


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_symbols_split_before_reading_the_module_answers_the_same(monkeypatch, capsys, fmt):
    """A module file past EARLY_SPLIT_BYTES is read by both processes, forked first: the same rows."""
    from tracebridge.cli import symbols

    module = str(MODULES / "rem_legacy_fp.ko")
    outputs = []
    for early, threshold in ((10**12, 10**9), (0, 2), (0, 10**9)):
        monkeypatch.setattr(symbols, "EARLY_SPLIT_BYTES", early)
        monkeypatch.setattr(parallel, "MIN_ITEMS", threshold)
        assert main(["symbols", "-f", fmt, module]) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1] == outputs[2] and len(outputs[0]) > 100


@pytest.mark.parametrize("fmt", ["json", "csv"])
@pytest.mark.parametrize("content", [b"\x7fELF" + bytes(200), b"not a module at all\n" * 50],
                         ids=["truncated-elf", "not-elf"])
def test_a_module_split_before_reading_that_cannot_be_read_writes_nothing(monkeypatch, capsys, tmp_path, fmt,
                                                                          content):
    """The module is read before the output is opened: one error line, and neither a ``[`` or a CSV header on
    standard output nor an output file."""
    from tracebridge.cli import symbols

    monkeypatch.setattr(symbols, "EARLY_SPLIT_BYTES", 0)
    monkeypatch.setattr(parallel, "MIN_ITEMS", 2)
    module = tmp_path / "bad.ko"
    module.write_bytes(content)
    assert main(["symbols", "-f", fmt, str(module)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1 and err.startswith(f"tracebridge: {module}:")
    assert main(["symbols", "-f", fmt, str(module), "-o", str(tmp_path / "rows")]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.ko"]


def prepared_where(pids: list[int], count: int):
    """A preparation that notes the process it ran in (in ``pids``, through a pipe for the child's) and
    whose work tags each item with that process."""
    def prepare():
        made_in = os.getpid()
        pids.append(made_in)
        return parallel.Prepared(lambda part: [(x, made_in) for x in part], list(range(count)))

    return prepare


def test_prepared_work_is_prepared_in_each_process(monkeypatch):
    monkeypatch.setattr(parallel, "MIN_ITEMS", 2)
    pids: list[int] = []
    result = list(parallel.split_prepared(prepared_where(pids, 10), cost=lambda x: 1))
    assert [x for x, _ in result] == list(range(10))
    parent = os.getpid()
    made_in = [pid for _, pid in result]
    assert made_in[:5] == [parent] * 5 and parent not in made_in[5:] and len(set(made_in[5:])) == 1
    assert pids == [parent]  # the child's own list, appended to in the child, is not this one


@pytest.mark.parametrize("count", [0, 1])
def test_prepared_work_that_is_small_is_done_in_the_parent(monkeypatch, forked, count):
    monkeypatch.setattr(parallel, "MIN_ITEMS", 2)
    result = list(parallel.split_prepared(prepared_where([], count)))
    assert result == [(x, os.getpid()) for x in range(count)]
    assert len(forked) == 1  # the child prepared too, and left nothing
    with pytest.raises(ChildProcessError):
        os.waitpid(forked[0], os.WNOHANG)


def test_a_failing_preparation_ends_the_child_and_is_raised(monkeypatch, forked, tmp_path):
    """The parent's preparation fails (a bad module): the child, which would work on for nothing, is
    killed and reaped, and the error is the caller's."""
    monkeypatch.setattr(parallel, "MIN_ITEMS", 2)
    parent, started = os.getpid(), tmp_path / "child"

    def prepare():
        if os.getpid() == parent:
            while not started.exists():
                time.sleep(0.01)
            raise ValueError("bad module")
        started.touch()
        time.sleep(60)  # a child that would outlive the test by far

    begun = time.monotonic()
    with pytest.raises(ValueError, match="bad module"):
        list(parallel.split_prepared(prepare))
    assert time.monotonic() - begun < 30
    with pytest.raises(ChildProcessError):
        os.waitpid(forked[0], os.WNOHANG)


def test_without_two_cpus_prepared_work_is_done_here(monkeypatch, forked):
    monkeypatch.setattr(parallel, "usable_cpus", lambda: 1)
    assert list(parallel.split_prepared(prepared_where([], 10))) == [(x, os.getpid()) for x in range(10)]
    assert forked == []


def test_gen_probes_is_the_same_split_or_not(monkeypatch, tmp_path):
    texts = []
    for threshold in (10**9, 2):
        monkeypatch.setattr(parallel, "MIN_ITEMS", threshold)
        run = tmp_path / str(threshold)
        run.mkdir()
        assert main(["gen-probes", str(MODULES / "rem_legacy_fp.ko"), "-t", "flow", "-o", str(run / "probes.d"),
                     "--map", str(run / "map.json")]) == 0
        texts.append((run / "probes.d").read_text() + (run / "map.json").read_text())
    assert texts[0] == texts[1] and "fbt:" in texts[0]


def test_the_first_half_comes_while_the_child_still_works(monkeypatch, tmp_path):
    """split_iter gives the parent's half before the child is done: here the child waits for a file the
    caller writes only after reading the first half."""
    monkeypatch.setattr(parallel, "MIN_ITEMS", 2)
    parent, go = os.getpid(), tmp_path / "go"

    def work(part):
        if os.getpid() != parent:
            while not go.exists():
                time.sleep(0.01)
        return [x * 2 for x in part]

    results = parallel.split_iter(work, list(range(10)))
    assert [next(results) for _ in range(5)] == [0, 2, 4, 6, 8]
    go.touch()
    assert list(results) == [10, 12, 14, 16, 18]


@pytest.fixture
def forked(monkeypatch) -> list[int]:
    """The children's pids, as the parent's os.fork returns them (lists of 2 items and more are split)."""
    monkeypatch.setattr(parallel, "MIN_ITEMS", 2)
    pids: list[int] = []
    fork = os.fork

    def remembered_fork():
        pid = fork()
        pids.append(pid)
        return pid

    monkeypatch.setattr(os, "fork", remembered_fork)
    return pids


def test_a_caller_that_stops_reading_has_the_child_killed_and_reaped(forked):
    results = parallel.split_iter(lambda part: list(part), list(range(10)))
    assert next(results) == 0
    results.close()
    with pytest.raises(ChildProcessError):  # reaped already
        os.waitpid(forked[0], 0)


def test_a_child_that_left_its_results_is_waited_for_once_they_are_read(forked):
    """No child outlives the split: a program that waits for any child of its own sees none of ours."""
    assert parallel.split_map(lambda part: [x * 3 for x in part], list(range(10))) == [x * 3 for x in range(10)]
    results = parallel.split_iter(lambda part: [bytes(part)], list(range(10)))
    assert list(results) == [bytes(range(5)), bytes(range(5, 10))]
    for pid in forked:
        with pytest.raises(ChildProcessError):  # reaped already
            os.waitpid(pid, os.WNOHANG)
    with pytest.raises(ChildProcessError):
        os.wait()


def test_without_memfd_the_answer_comes_through_a_temporary_file(monkeypatch):
    monkeypatch.setattr(parallel, "MIN_ITEMS", 2)

    def refused(name):
        raise OSError("no memfd here")

    monkeypatch.setattr(os, "memfd_create", refused, raising=False)
    assert parallel.split_map(lambda part: [x + 1 for x in part], list(range(50))) == list(range(1, 51))


@pytest.mark.parametrize("memfd", [True, False])
def test_chunks_of_bytes_come_back_as_views_of_what_the_child_left(monkeypatch, memfd):
    """Work answering with an iterator of bytes: the child leaves each chunk as it makes it; the parent
    gets views of them in order, empty chunks and chunks past a page included."""
    monkeypatch.setattr(parallel, "MIN_ITEMS", 2)
    if not memfd:
        monkeypatch.setattr(os, "memfd_create", lambda name: (_ for _ in ()).throw(OSError("no memfd")), raising=False)
    parent = os.getpid()

    def work(part):
        here = os.getpid() == parent
        return (bytes([x % 256]) * (x * 997) + (b"p" if here else b"c") for x in part)

    chunks = [(bytes(chunk), type(chunk), getattr(chunk, "readonly", True))
              for chunk in parallel.split_iter(work, list(range(12)))]  # each read before the next is asked for
    assert [chunk for chunk, _, _ in chunks] == [bytes([x]) * (x * 997) + (b"p" if x < 6 else b"c") for x in range(12)]
    assert [kind for _, kind, _ in chunks] == [bytes] * 6 + [memoryview] * 6 and all(ro for _, _, ro in chunks)


def test_views_are_released_as_the_next_chunk_is_asked_for(monkeypatch):
    monkeypatch.setattr(parallel, "MIN_ITEMS", 2)
    results = parallel.split_iter(lambda part: (bytes([x]) * 3 for x in part), list(range(4)))
    assert [bytes(next(results)) for _ in range(3)] == [b"\0\0\0", b"\1\1\1", b"\2\2\2"]
    view = next(results)
    assert bytes(view) == b"\3\3\3"
    assert list(results) == []
    with pytest.raises(ValueError):  # released: the mapping under it is gone
        bytes(view)


def test_a_child_failing_amid_its_chunks_is_redone_in_the_parent(monkeypatch):
    monkeypatch.setattr(parallel, "MIN_ITEMS", 2)
    parent = os.getpid()

    def work(part):
        for x in part:
            if x == 8 and os.getpid() != parent:
                raise RuntimeError("child only")
            yield str(x).encode()

    assert [bytes(chunk) for chunk in parallel.split_iter(work, list(range(10)))] == [str(x).encode() for x in range(10)]


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_symbols_writes_a_non_utf8_output_the_same(monkeypatch, tmp_path, fmt):
    """Parts made in the child reach a Latin-1 standard output decoded, as the parent's own do."""
    import io
    import sys

    module = str(MODULES / "rem_legacy_fp.ko")
    texts = []
    for threshold in (10**9, 2):
        monkeypatch.setattr(parallel, "MIN_ITEMS", threshold)
        out = io.TextIOWrapper(io.BytesIO(), encoding="latin-1")
        monkeypatch.setattr(sys, "stdout", out)
        assert main(["symbols", "-f", fmt, module]) == 0
        out.flush()
        texts.append(out.buffer.getvalue())
    assert texts[0] == texts[1] and len(texts[0]) > 100
