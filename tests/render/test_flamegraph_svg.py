"""The flame graph SVG: well-formed, complete, safe with hostile names, laid out as flamegraph.pl lays out."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flamecheck import (RX_FRAME, SVG, by_name, contrast_with_black, driver_profile, drawn, folded_profile, kernel,
                        module, parse, reference_layout, rust)
from tracebridge.cli import main
from tracebridge.support.errors import InputError
from tracebridge.render.flamegraph import CHAR_WIDTH, GraphOptions, render_flamegraph, visible, xml
from tracebridge.profile.labels import LabelOptions
from tracebridge.render.palettes import PALETTES
from tracebridge.profile.model import Frame, Profile

ALLOWED_TAGS = {"svg", "title", "defs", "linearGradient", "stop", "style", "rect", "text", "g", "script"}


def test_svg_parses_and_holds_every_name_with_its_details():
    svg = render_flamegraph(driver_profile())
    root = parse(svg)
    assert root.tag == SVG + "svg"
    frames = by_name(drawn(svg))
    assert set(frames) == {"all", "fork_exit", "ithread_loop", "if_rem::rx::rx_frame", "m_free", "em_rxeof",
                           "kernel`0xffffffff80a0b0c0"}
    rx = frames["if_rem::rx::rx_frame"]
    assert rx.title.split("\n") == ["if_rem::rx::rx_frame", f"mangled: {RX_FRAME}", "module: if_rem.ko",
                                    "80 samples, 61.54%"]
    assert frames["all"].title == "all\n130 samples, 100.00%"
    assert frames["m_free"].title.endswith("\n30 samples, 23.08%")
    assert rx.label == "if_rem::rx::rx_frame"
    assert root.find(SVG + "title").text == "Flame Graph"


def test_layout_widths_and_positions():
    frames = by_name(drawn(render_flamegraph(driver_profile())))
    # Children tile their parent after its own samples, in name order.
    assert (frames["ithread_loop"].x, frames["ithread_loop"].w) == (0, 120)
    assert (frames["kernel`0xffffffff80a0b0c0"].x, frames["kernel`0xffffffff80a0b0c0"].w) == (120, 10)
    assert (frames["em_rxeof"].x, frames["em_rxeof"].w) == (0, 40)
    assert (frames["if_rem::rx::rx_frame"].x, frames["if_rem::rx::rx_frame"].w) == (40, 80)
    assert (frames["m_free"].x, frames["m_free"].w) == (90, 30)   # after rx_frame's own 50
    assert frames["m_free"].rect_x == f"{90 / 130 * 100:.4f}%"
    assert frames["m_free"].rect_width == f"{30 / 130 * 100:.4f}%"


names = st.sampled_from(["a", "b", "c", "d", "e"])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.lists(names, max_size=6), st.integers(1, 100)), min_size=1, max_size=25))
def test_layout_matches_the_obvious_recursive_layout(stacks):
    profile = Profile()
    for stack, weight in stacks:
        profile.add([kernel(name) for name in stack], weight)
    frames = drawn(render_flamegraph(profile, GraphOptions(min_width=0)))
    assert {(f.depth, f.name, f.x, f.w) for f in frames} == reference_layout(profile)
    # Widths sum correctly: the children of a frame never exceed it, and
    # with its own samples they fill it exactly.
    for parent in frames:
        children = [f for f in frames if f.depth == parent.depth + 1 and parent.x <= f.x < parent.x + parent.w]
        assert sum(c.w for c in children) <= parent.w
        assert all(c.x + c.w <= parent.x + parent.w for c in children)


HOSTILE = [
    "<script>alert(1)</script>",
    "]]><script>window.__pwned=1</script><![CDATA[",
    "</title><g onload=\"window.__pwned=1\">",
    "quote\"apos'amp&lt;",
    "line\nbreak\ttab\rcr",
    "nul\x00bell\x07esc\x1bdel\x7fc1\x85",
    "lone\ud800surrogate\ufffe",
    "-->&#x3C;script&#x3E;",
]


def hostile_profile() -> Profile:
    profile = Profile()
    for i, name in enumerate(HOSTILE):
        frame = Frame(f"mod{i}<x>&\"", name, name)
        profile.add([kernel("root"), frame], 10 + i)
    profile.add([kernel("root"), Frame("kernel", "_ZN<&>\x00", "mangled<&>\x01\n")], 5)
    return profile


def test_hostile_names_cannot_inject_markup_or_break_the_xml():
    options = GraphOptions(title="<title>&\x00\"'", subtitle="]]></text><script>x()</script>",
                           count_name="</title>\x1f", width=4000)
    svg = render_flamegraph(hostile_profile(), options)
    root = parse(svg)  # well-formed XML 1.0, or this raises
    assert {element.tag.removeprefix(SVG) for element in root.iter()} <= ALLOWED_TAGS
    scripts = list(root.iter(SVG + "script"))
    assert len(scripts) == 1 and "__pwned" not in scripts[0].text
    assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]", svg)
    frames = by_name(drawn(svg))
    for name in HOSTILE:
        shown = visible(name)
        assert shown in frames, name
        assert "\n" not in shown and "\x00" not in shown
        assert frames[shown].label == shown  # wide enough for the whole name
    assert frames[visible("nul\x00bell\x07esc\x1bdel\x7fc1\x85")].name == r"nul\x00bell\x07esc\x1bdel\x7fc1\x85"
    assert frames[visible("lone\ud800surrogate\ufffe")].name == r"lone\ud800surrogate\ufffe"
    mangled = frames[visible("mangled<&>\x01\n")]
    assert "mangled: _ZN<&>\\x00" in mangled.title
    assert "module: mod0<x>&\"" in frames[HOSTILE[0]].title
    assert root.find(SVG + "title").text == "<title>&\\x00\"'"
    assert all(g.get("data-x") is not None for g in root.iter(SVG + "g"))
    assert all(f.title.endswith("%") for f in frames.values())
    assert "</title>\\x1f" in frames["root"].title


def test_xml_escaping_of_the_five_specials():
    assert xml("<a href=\"x\">'&'</a>") == "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
    assert xml("plain") == "plain"


def test_minwidth_elides_narrow_frames_and_merges_runs_of_them():
    profile = Profile()
    profile.add([kernel("main"), kernel("busy")], 1_000_000)
    for i in range(1000):
        profile.add([kernel("main"), kernel("poll"), kernel(f"tiny{i:04}")], 1)
    profile.add([kernel("lonely")], 1)
    svg = render_flamegraph(profile)
    frames = drawn(svg)
    names = {f.name for f in frames}
    assert not any(name.startswith("tiny") for name in names)
    assert "lonely" not in names  # one narrow frame alone is simply left out
    elided = [f for f in frames if f.css == "f e"]
    assert len(elided) == 1
    assert elided[0].name == "1000 frames, each narrower than 0.1 px"
    assert elided[0].w == 1000 and elided[0].depth == 3
    assert elided[0].x == by_name(frames)["poll"].x
    assert len(svg) < 20_000
    everything = drawn(render_flamegraph(profile, GraphOptions(min_width=0)))
    assert sum(1 for f in everything if f.name.startswith("tiny")) == 1000
    assert not any(f.css == "f e" for f in everything)


def test_minwidth_is_in_pixels_of_the_image_width():
    profile = folded_profile("a;wide 1000\na;narrow 1")   # narrow: 1180/1001 = 1.18 px at width 1200
    assert "narrow" in by_name(drawn(render_flamegraph(profile, GraphOptions(min_width=1))))
    assert "narrow" not in by_name(drawn(render_flamegraph(profile, GraphOptions(min_width=2))))
    assert "narrow" in by_name(drawn(render_flamegraph(profile, GraphOptions(min_width=2, width=3000))))


def test_inverted_puts_the_root_on_top():
    profile = driver_profile()
    flame = by_name(drawn(render_flamegraph(profile)))
    icicle_svg = render_flamegraph(profile, GraphOptions(inverted=True))
    icicle = by_name(drawn(icicle_svg))
    chain = ["all", "fork_exit", "ithread_loop", "if_rem::rx::rx_frame", "m_free"]
    assert [flame[n].y for n in chain] == sorted((flame[n].y for n in chain), reverse=True)
    assert [icicle[n].y for n in chain] == sorted(icicle[n].y for n in chain)
    assert icicle["all"].y < icicle["m_free"].y
    assert {(f.x, f.w, f.depth) for f in icicle.values()} == {(f.x, f.w, f.depth) for f in flame.values()}
    assert parse(icicle_svg).find(SVG + "title").text == "Icicle Graph"


def _channels(fill: str) -> tuple[int, int, int]:
    return tuple(int(v) for v in re.fullmatch(r"rgb\((\d+),(\d+),(\d+)\)", fill).groups())


def test_rust_frames_are_coloured_apart_from_c_and_unresolved_frames():
    svg = render_flamegraph(driver_profile())
    frames = by_name(drawn(svg))
    r, g, b = _channels(frames["if_rem::rx::rx_frame"].fill)
    assert r >= 238 and 128 <= g <= 168 and b <= 50          # orange
    r, g, b = _channels(frames["fork_exit"].fill)
    assert r >= 205 and g <= 110 and b >= 90                  # kernel C: crimson
    r, g, b = _channels(frames["em_rxeof"].fill)
    assert r >= 205 and g >= 195 and b <= 100                 # module C: yellow
    r, g, b = _channels(frames["kernel`0xffffffff80a0b0c0"].fill)
    assert r == g == b                                        # unresolved: grey
    legend = [t.text for t in parse(svg).iter(SVG + "text") if t.get("class") == "tb-legend"]
    assert legend == ["Rust", "C, kernel", "C/C++, module", "unresolved"]


def test_other_palettes_and_same_name_same_colour():
    profile = driver_profile()
    hot = by_name(drawn(render_flamegraph(profile, GraphOptions(colors="hot"))))
    for name in ("if_rem::rx::rx_frame", "fork_exit", "em_rxeof"):
        r, g, b = _channels(hot[name].fill)
        assert r >= 205 and b <= 55
    r, g, b = _channels(by_name(drawn(render_flamegraph(profile, GraphOptions(colors="mem"))))["m_free"].fill)
    assert r == 0 and g >= 190
    # Colours hang on names only: the same function is the same colour in another graph.
    other = folded_profile("x;y;m_free 3")
    assert by_name(drawn(render_flamegraph(other)))["m_free"].fill == by_name(drawn(render_flamegraph(profile)))[
        "m_free"].fill


def test_labels_fit_their_boxes():
    profile = Profile()
    long = "very::long::rust::path::" * 8
    for i, weight in enumerate((1, 5, 20, 60, 300, 3000)):
        profile.add([kernel(f"{long}{i}")], weight)
    options = GraphOptions()
    frames = drawn(render_flamegraph(profile, options))
    total = frames[0].w
    for f in frames:
        pixels = f.w / total * options.frames_width
        if f.label:
            assert (len(f.label) * options.font_size * CHAR_WIDTH) <= pixels - 3
            assert f.label == f.name or (f.label.endswith("..") and f.name.startswith(f.label[:-2]))
    assert any(f.label and f.label.endswith("..") for f in frames)


def test_same_input_same_bytes_whatever_the_hash_seed(tmp_path):
    folded = tmp_path / "in.folded"
    folded.write_text("kernel`fork_exit;if_rem.ko`_ZN6if_rem2rx8rx_frame17h0123456789abcdefE 7\n"
                      "kernel`fork_exit;kernel`m_free 3\nkernel`fork_exit;if_em.ko`em_rxeof 5\n"
                      "kernel`a;kernel`b;kernel`c 1\nkernel`a;kernel`c 2\n")
    outputs = []
    for seed in ("1", "2", "3"):
        out = tmp_path / f"out{seed}.svg"
        env = dict(os.environ, PYTHONHASHSEED=seed)
        subprocess.run([sys.executable, "-m", "tracebridge", "flamegraph", str(folded), "-o", str(out)],
                       check=True, env=env)
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1] == outputs[2]
    assert render_flamegraph(driver_profile()) == render_flamegraph(driver_profile())


def test_fractional_weights_and_count_name():
    profile = folded_profile("a;b 0.25\na;c 1.5")
    frames = by_name(drawn(render_flamegraph(profile, GraphOptions(count_name="ms"))))
    assert frames["b"].title.endswith("0.25 ms, 14.29%")
    assert frames["c"].title.endswith("1.50 ms, 85.71%")


def test_offsets_merge_unless_asked_to_keep_them():
    profile = Profile()
    profile.add([kernel("main"), replace(kernel("work"), offset=0x10)], 3)
    profile.add([kernel("main"), replace(kernel("work"), offset=0x20)], 4)
    merged = by_name(drawn(render_flamegraph(profile)))
    assert merged["work"].w == 7
    apart = by_name(drawn(render_flamegraph(profile, labels=LabelOptions(include_offset=True))))
    assert apart["work+0x10"].w == 3 and apart["work+0x20"].w == 4


def test_no_samples_is_an_input_error():
    profile = folded_profile("a;b 0")
    with pytest.raises(InputError, match="no samples to draw"):
        render_flamegraph(profile)


def test_cli_flamegraph(tmp_path, capsys):
    folded = tmp_path / "in.folded"
    folded.write_text("kernel`fork_exit;if_rem.ko`_ZN6if_rem2rx8rx_frame17h0123456789abcdefE 7\n"
                      "kernel`fork_exit;kernel`m_free 3\n")
    out = tmp_path / "graph.svg"
    assert main(["flamegraph", str(folded), "-o", str(out), "--title", "rx path", "--width", "800",
                 "--count-name", "ns", "--inverted", "--colors", "hot", "--minwidth", "0"]) == 0
    root = parse(out.read_text())
    assert root.get("width") == "800"
    assert root.find(SVG + "title").text == "rx path"
    frames = by_name(drawn(out.read_text()))
    assert frames["if_rem::rx::rx_frame"].title.endswith("7 ns, 70.00%")
    assert main(["flamegraph", str(folded)]) == 0
    assert capsys.readouterr().out.startswith("<?xml")


def test_cli_errors_are_one_line(tmp_path, capsys):
    folded = tmp_path / "in.folded"
    folded.write_text("a;b 0\n")
    assert main(["flamegraph", str(folded), "-o", str(tmp_path / "x.svg")]) == 2
    assert capsys.readouterr().err.strip().endswith("no samples to draw")
    folded.write_text("a;b 1\n")
    assert main(["flamegraph", str(folded), "-o", str(folded)]) == 2
    assert "refusing to overwrite an input" in capsys.readouterr().err
    assert folded.read_text() == "a;b 1\n"
    with pytest.raises(SystemExit):
        main(["flamegraph", str(folded), "--minwidth", "-1"])
    with pytest.raises(SystemExit):
        main(["flamegraph", str(folded), "--colors", "neon"])


def test_frames_without_module_name_are_native_code():
    profile = Profile()
    profile.add([module("em_rxeof", where=None)], 1)
    svg = render_flamegraph(profile)
    frames = by_name(drawn(svg))
    r, g, b = _channels(frames["em_rxeof"].fill)
    assert g >= 195 and "module:" not in frames["em_rxeof"].title
    assert [t.text for t in parse(svg).iter(SVG + "text") if t.get("class") == "tb-legend"] == [
        "C/C++, module not known"]


def test_a_graph_of_our_own_folded_output_keeps_rust_apart(tmp_path):
    folded = tmp_path / "if_rem.folded"
    folded.write_text("kernel`0xffffffff8104e10e;fork_exit;ithread_loop;rem_intr;rem::em::rx::rxeof 9\n")
    svg_path = tmp_path / "out.svg"
    assert main(["flamegraph", str(folded), "-o", str(svg_path)]) == 0
    svg = svg_path.read_text()
    frames = by_name(drawn(svg))
    r, g, b = _channels(frames["rem::em::rx::rxeof"].fill)
    assert r >= 238 and 128 <= g <= 168 and b <= 50          # orange, as from the capture itself
    assert [t.text for t in parse(svg).iter(SVG + "text") if t.get("class") == "tb-legend"] == [
        "Rust", "C/C++, module not known", "unresolved"]


def test_generic_instances_draw_as_one_box_listing_their_symbols():
    profile = Profile()
    instances = [f"_ZN3rem2em2rx16Adapter$LT$T$GT$8rx_frame17h{n:016x}E" for n in range(6)]
    for weight, symbol in enumerate(instances, 1):
        profile.add([kernel("ithread_loop"), rust(symbol)], weight)
    frames = [f for f in drawn(render_flamegraph(profile)) if f.name == "rem::em::rx::Adapter<T>::rx_frame"]
    assert len(frames) == 1 and frames[0].w == 21
    lines = frames[0].title.split("\n")
    assert lines[1] == "6 instances, mangled:"
    assert lines[2:6] == ["  " + s for s in instances[:4]] and lines[6] == "  and 2 more"


def test_an_unresolved_frame_shows_its_address_not_a_mangled_name():
    profile = Profile()
    hex_frame = Frame("if_rem.ko", "0xffffffff82a1cd0f", "if_rem.ko+0xd0f", 0xD0F, "unknown", None)
    profile.add([kernel("ithread_loop"), hex_frame], 5)
    (frame,) = [f for f in drawn(render_flamegraph(profile)) if f.name == "if_rem.ko+0xd0f"]
    lines = frame.title.split("\n")
    assert lines[1] == "address: 0xffffffff82a1cd0f" and not any("mangled" in line for line in lines)


def test_search_reads_every_instance_of_a_merged_box():
    """The script's search names: those a tooltip lists (each instance of a merged box too)."""
    import shutil

    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    script = (Path(__file__).parents[2] / "tracebridge" / "data" / "flamegraph.js").read_text()
    start = script.index("      var names = [lines[0]];")
    end = script.index("      g.tb = {")
    program = ("var lines = " + json.dumps(["rem::em::rx::Adapter<T>::rx_frame", "2 instances, mangled:",
                                            "  _ZN3remA", "  _ZN3remB", "module: if_rem.ko", "7 samples"]) + ";\n"
               + script[start:end] + "console.log(JSON.stringify(names));\n")
    names = json.loads(subprocess.run([node, "-e", program], capture_output=True, text=True, check=True).stdout)
    assert names == ["rem::em::rx::Adapter<T>::rx_frame", "_ZN3remA", "_ZN3remB", "if_rem.ko"]


def test_a_box_merging_several_source_lines_lists_them():
    profile = Profile()
    for line, weight in ((12, 3), (14, 2), (0, 1)):
        frame = Frame("if_rem.ko", "rem::parse", "rem::parse", inlined=True, file="src/desc.rs", line=line)
        profile.add([kernel("rxeof"), frame], weight)
    title = by_name(drawn(render_flamegraph(profile)))["rem::parse"].title.splitlines()
    assert title[:5] == ["rem::parse", "inlined (no call: DWARF places this code in the frame below)",
                         "3 source lines:", "  src/desc.rs:12", "  src/desc.rs:14"]
    assert "  src/desc.rs:?" in title  # line 0: addr2line's "?"
    assert not any(t.startswith("source: ") for t in by_name(drawn(render_flamegraph(profile)))["rxeof"].title.splitlines())


FOLDED_INPUT = Path(__file__).parents[1] / "data" / "pmcstat" / "multi-image.perl.folded"


@pytest.mark.parametrize("colors", PALETTES)
def test_labels_are_readable_on_every_frame_of_folded_input(tmp_path, colors):
    """Black labels on C frames read from folded text (and every other frame): WCAG AA, 4.5:1 or more."""
    out = tmp_path / "graph.svg"
    assert main(["flamegraph", str(FOLDED_INPUT), "--colors", colors, "-o", str(out)]) == 0
    frames = drawn(out.read_text())
    assert len(frames) > 5
    worst = min(frames, key=lambda f: contrast_with_black(f.fill))
    assert contrast_with_black(worst.fill) >= 4.5, (worst.name, worst.fill)
