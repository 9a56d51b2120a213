"""Differential flame graphs and the table of top changes."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flamecheck import SVG, by_name, contrast_with_black, drawn, folded_profile, kernel, module, parse, rust
from tracebridge.cli import main
from tracebridge.render.diffgraph import DiffOptions, compare, read_name_map, render_diff, top_changes
from tracebridge.support.errors import InputError
from tracebridge.render.flamegraph import GraphOptions
from tracebridge.render.palettes import diff_fill
from tracebridge.profile.model import Profile


def _channels(fill: str) -> tuple[int, int, int]:
    return tuple(int(v) for v in re.fullmatch(r"rgb\((\d+),(\d+),(\d+)\)", fill).groups())


def is_red(fill: str) -> bool:
    r, g, b = _channels(fill)
    return r == 255 and g == b < 255


def is_blue(fill: str) -> bool:
    r, g, b = _channels(fill)
    return b == 255 and r == g < 255


def is_white(fill: str) -> bool:
    return fill == "rgb(255,255,255)"


BEFORE = folded_profile("main;grows 10\nmain;shrinks 30\nmain;same 20\nmain;gone 5")
AFTER = folded_profile("main;grows 30\nmain;shrinks 10\nmain;same 20\nmain;new 5")


def test_grown_frames_are_red_and_shrunk_frames_blue():
    svg = render_diff(compare(BEFORE, AFTER))
    parse(svg)
    frames = by_name(drawn(svg))
    assert is_red(frames["grows"].fill) and is_red(frames["new"].fill)
    assert is_blue(frames["shrinks"].fill)
    assert is_white(frames["same"].fill) and is_white(frames["main"].fill)
    # Drawn on AFTER's shape: AFTER's widths, and what AFTER lacks is not drawn.
    assert frames["grows"].w == 30 and frames["shrinks"].w == 10
    assert "gone" not in frames
    # The largest change is the most saturated, smaller ones paler.
    assert _channels(frames["grows"].fill) == _channels(diff_fill(1, 1))
    assert _channels(frames["new"].fill)[1] > _channels(frames["grows"].fill)[1]
    assert frames["grows"].title.endswith("30 samples, 46.15%; before 10, 15.38%; change self +20, total +20")
    assert parse(svg).find(SVG + "title").text == "Differential Flame Graph"


def test_self_versus_total_colouring():
    before = folded_profile("main;parent;child 10\nmain;other 10")
    after = folded_profile("main;parent;child 20\nmain;other 10")
    by_self = by_name(drawn(render_diff(compare(before, after))))
    assert is_white(by_self["parent"].fill) and is_red(by_self["child"].fill)
    by_total = by_name(drawn(render_diff(compare(before, after, DiffOptions(by="total")))))
    assert is_red(by_total["parent"].fill) and is_red(by_total["child"].fill)
    assert is_white(by_total["other"].fill)


def test_normalize_compares_shares():
    before = folded_profile("main;b 10\nmain;c 10")       # b: 50 %
    after = folded_profile("main;b 15\nmain;c 45")        # b: 25 %, though more samples
    raw = by_name(drawn(render_diff(compare(before, after))))
    assert is_red(raw["b"].fill)
    shares = by_name(drawn(render_diff(compare(before, after, DiffOptions(normalize=True)))))
    assert is_blue(shares["b"].fill) and is_red(shares["c"].fill)
    assert is_white(shares["main"].fill)
    assert shares["b"].title.endswith("15 samples, 25.00%; before 10, 50.00%; change self -25.00 pp, total -25.00 pp")


def test_before_shape_shows_what_disappeared():
    frames = by_name(drawn(render_diff(compare(BEFORE, AFTER, DiffOptions(shape="before")))))
    assert "gone" in frames and "new" not in frames
    assert is_blue(frames["gone"].fill) and is_red(frames["grows"].fill) and is_blue(frames["shrinks"].fill)
    assert frames["grows"].w == 10


def test_top_changes_table():
    rows = top_changes(compare(BEFORE, AFTER))
    # Largest change first, ties by name; unchanged functions come last.
    assert [r["function"] for r in rows] == ["grows", "shrinks", "gone", "new", "same"]
    assert rows[0] == {"function": "grows", "module": "kernel", "before": 10, "after": 30, "delta": 20,
                       "before_pct": 15.38, "after_pct": 46.15, "delta_pp": 30.77}
    totals = {r["function"]: r for r in top_changes(compare(BEFORE, AFTER, DiffOptions(by="total")), top=None)}
    assert totals["main"]["before"] == 65 and totals["main"]["after"] == 65 and totals["main"]["delta"] == 0
    assert len(top_changes(compare(BEFORE, AFTER), top=2)) == 2


def test_recursion_counts_once_in_totals():
    before = folded_profile("f;f;f 4")
    after = folded_profile("f;f 6")
    rows = {r["function"]: r for r in top_changes(compare(before, after, DiffOptions(by="total")))}
    assert rows["f"]["before"] == 4 and rows["f"]["after"] == 6


def test_name_map_matches_a_c_function_with_its_rust_replacement(tmp_path):
    before, after = Profile(), Profile()
    before.add([kernel("ithread_loop"), module("em_rxeof")], 40)
    after.add([kernel("ithread_loop"), rust()], 30)
    mapping = tmp_path / "names.tsv"
    mapping.write_text("# C driver -> Rust driver\nem_rxeof\tif_rem::rx::rx_frame\n\n")
    names = read_name_map(mapping)
    assert names == {"em_rxeof": "if_rem::rx::rx_frame"}
    frames = by_name(drawn(render_diff(compare(before, after, DiffOptions(names=names)))))
    assert is_blue(frames["if_rem::rx::rx_frame"].fill)
    assert "before 40" in frames["if_rem::rx::rx_frame"].title
    unmapped = by_name(drawn(render_diff(compare(before, after))))
    assert is_red(unmapped["if_rem::rx::rx_frame"].fill)


def test_bad_name_map_and_empty_profiles(tmp_path):
    mapping = tmp_path / "names.tsv"
    mapping.write_text("em_rxeof if_rem::rx::rx_frame\n")
    with pytest.raises(InputError, match=r"names.tsv:1: expected FROM<TAB>TO"):
        read_name_map(mapping)
    with pytest.raises(InputError, match="no such file"):
        read_name_map(tmp_path / "missing.tsv")
    with pytest.raises(InputError, match="BEFORE"):
        compare(Profile(), AFTER)


def test_hostile_names_in_a_diff_stay_text():
    before = folded_profile("main;<script>alert(1)</script> 3")
    after = folded_profile("main;<script>alert(1)</script> 9")
    svg = render_diff(compare(before, after), GraphOptions(title="]]>\x00"))
    root = parse(svg)
    assert len(list(root.iter(SVG + "script"))) == 1
    assert "<script>alert(1)</script>" in by_name(drawn(svg))


def write(path, text):
    path.write_text(text)
    return str(path)


def test_cli_diff(tmp_path, capsys):
    before = write(tmp_path / "if_em.folded", "kernel`main;kernel`grows 10\nkernel`main;kernel`shrinks 30\n")
    after = write(tmp_path / "if_rem.folded", "kernel`main;kernel`grows 30\nkernel`main;kernel`shrinks 10\n")
    out = tmp_path / "diff.svg"
    assert main(["diff", before, after, "-o", str(out), "-f", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["function"], r["delta"]) for r in rows] == [("grows", 20), ("shrinks", -20)]
    frames = by_name(drawn(out.read_text()))
    assert is_red(frames["grows"].fill) and is_blue(frames["shrinks"].fill)
    assert main(["diff", before, after, "-f", "csv", "--by", "total", "--normalize", "--top", "1"]) == 0
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(table) == 1 and table[0]["function"] in ("grows", "shrinks")
    assert main(["diff", before, after]) == 0
    text = capsys.readouterr().out
    assert "grows" in text and "Top changes in self samples" in text


def test_cli_diff_errors(tmp_path, capsys):
    before = write(tmp_path / "a.folded", "main;f 1\n")
    with pytest.raises(SystemExit) as exit_:  # a usage error: the usage line, then the message
        main(["diff", before])
    assert exit_.value.code == 2 and "two inputs" in capsys.readouterr().err
    assert main(["diff", before, before, "-o", "-"]) == 2
    assert main(["diff", before, before, "-o", before]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err
    bad = write(tmp_path / "map.tsv", "only-one-column\n")
    assert main(["diff", before, before, "--map-names", bad]) == 2
    assert "map.tsv:1" in capsys.readouterr().err


names = st.sampled_from(["a", "b", "c", "d"])
stacks = st.lists(st.tuples(st.lists(names, min_size=1, max_size=5), st.integers(1, 50)), min_size=1, max_size=15)


@settings(max_examples=100, deadline=None)
@given(stacks, stacks)
def test_every_drawn_frame_carries_its_paths_samples_from_both_sides(before_stacks, after_stacks):
    before, after = Profile(), Profile()
    for profile, rows in ((before, before_stacks), (after, after_stacks)):
        for stack, weight in rows:
            profile.add([kernel(name) for name in stack], weight)

    def totals(profile: Profile) -> dict[tuple[str, ...], float]:
        sums: dict[tuple[str, ...], float] = {}
        for frames, weight in profile:
            path = [f.name for f in frames]
            for depth in range(len(path) + 1):
                key = tuple(path[:depth])
                sums[key] = sums.get(key, 0) + weight
        return sums

    after_paths, before_paths = totals(after), totals(before)
    frames = drawn(render_diff(compare(before, after), GraphOptions(min_width=0)))
    # Rebuild each drawn frame's path from the layout: the frame above it that contains it.
    paths = {}
    for f in sorted(frames, key=lambda f: f.depth):
        parent = [p for p in frames if p.depth == f.depth - 1 and p.x <= f.x < p.x + p.w]
        paths[id(f)] = () if f.depth == 0 else paths[id(parent[0])] + (f.name,)
    assert {paths[id(f)] for f in frames} == set(after_paths)
    for f in frames:
        path = paths[id(f)]
        assert f.w == after_paths[path]
        before_count = before_paths.get(path, 0)
        assert f"; before {before_count:,.0f}, " in f.title


@pytest.mark.parametrize("delta", [1, -1, 0.5, -0.5, 0.01, -0.01])
def test_labels_stay_readable_on_every_change_colour(delta):
    assert contrast_with_black(diff_fill(delta, 1)) >= 4.5
