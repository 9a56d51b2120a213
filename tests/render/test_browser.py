"""The flame graph in a real browser: it renders, search highlights and reports the share, click zooms.

Runs headless Chromium (Debian: ``apt-get install chromium``) over the
DevTools protocol; skipped when no Chromium is installed.  Set
``TRACEBRIDGE_SCREENSHOTS=DIR`` to keep the screenshots it takes.
"""

from __future__ import annotations

import io
import json
import os

import pytest

from chromium import Chromium, find_chromium
from flamecheck import by_name, driver_profile, drawn, folded_profile, kernel, rust
from tracebridge.render.diffgraph import compare, render_diff
from tracebridge.render.flamegraph import GraphOptions, render_flamegraph
from tracebridge.render.palettes import HIGHLIGHT
from tracebridge.profile.model import Frame, Profile

EXECUTABLE = find_chromium()
pytestmark = pytest.mark.skipif(EXECUTABLE is None, reason="Chromium is not installed (apt-get install chromium)")

HEIGHT = 240


@pytest.fixture(scope="module")
def browser():
    chromium = Chromium(EXECUTABLE)
    yield chromium
    chromium.close()


def show(browser: Chromium, tmp_path, svg: str, name: str = "graph") -> None:
    path = tmp_path / f"{name}.svg"
    path.write_text(svg, encoding="utf-8")
    browser.open(path.as_uri(), 1200, HEIGHT)


def keep(png: bytes, name: str) -> None:
    where = os.environ.get("TRACEBRIDGE_SCREENSHOTS")
    if where:
        os.makedirs(where, exist_ok=True)
        with open(os.path.join(where, name), "wb") as out:
            out.write(png)


def centre(browser: Chromium, selector_js: str) -> tuple[float, float]:
    box = browser.evaluate(f"(function(){{var b = ({selector_js}).getBoundingClientRect();"
                           "return [b.x + b.width / 2, b.y + b.height / 2];})()")
    return box[0], box[1]


def frame_js(name: str) -> str:
    """JavaScript for the <g> whose title starts with ``name``."""
    return ("Array.from(document.querySelectorAll('g.f')).find(function (g) {"
            f"return g.querySelector('title').textContent.split('\\n')[0] === {json.dumps(name)}; }})")


def rect_of(browser: Chromium, name: str) -> dict:
    return browser.evaluate(f"(function(){{var g = {frame_js(name)}; var r = g.querySelector('rect');"
                            "return {x: r.getAttribute('x'), width: r.getAttribute('width'), fill: r.getAttribute('fill'),"
                            "shown: getComputedStyle(g).display !== 'none', cls: g.getAttribute('class'),"
                            "label: g.querySelector('text') ? g.querySelector('text').textContent : ''};})()")


def pixel(png: bytes, x: int, y: int) -> tuple[int, int, int]:
    from PIL import Image

    return Image.open(io.BytesIO(png)).convert("RGB").getpixel((x, y))


def test_renders_with_readable_colours(browser, tmp_path):
    svg = render_flamegraph(driver_profile())
    show(browser, tmp_path, svg)
    assert browser.evaluate("document.documentElement.tagName") == "svg"
    assert browser.evaluate("document.querySelector('parsererror') === null")
    assert browser.evaluate("document.querySelectorAll('g.f').length") == len(drawn(svg))
    png = browser.screenshot()
    keep(png, "flamegraph.png")
    assert png.startswith(b"\x89PNG")
    x, y = centre(browser, frame_js("if_rem::rx::rx_frame") + ".querySelector('rect')")
    # The box is painted in its fill (text sits at its left, so look right of centre).
    fill = rect_of(browser, "if_rem::rx::rx_frame")["fill"]
    assert "rgb" + str(pixel(png, int(x) + 200, int(y))).replace(" ", "") == fill


def test_hover_shows_details(browser, tmp_path):
    show(browser, tmp_path, render_flamegraph(driver_profile()))
    browser.hover(*centre(browser, frame_js("m_free") + ".querySelector('rect')"))
    assert browser.evaluate("document.querySelector('.tb-details').textContent") == "m_free (30 samples, 23.08%)"


def test_hover_and_search_give_the_source_line(browser, tmp_path):
    """A DWARF-resolved frame (``--inline``) shows its file:line on hover and is found by it."""
    profile = Profile()
    rxeof = Frame("if_rem.ko", "rxeof", "rxeof", file="/usr/src/sys/modules/rem/src/rx.rs", line=40)
    parse = Frame("if_rem.ko", "rem::parse", "rem::parse", inlined=True, file="/usr/src/sys/modules/rem/src/desc.rs",
                  line=12)
    profile.add([kernel("fork_exit"), rxeof, parse], 30)
    profile.add([kernel("fork_exit"), rxeof], 10)
    show(browser, tmp_path, render_flamegraph(profile))
    browser.hover(*centre(browser, frame_js("rem::parse") + ".querySelector('rect')"))
    assert (browser.evaluate("document.querySelector('.tb-details').textContent")
            == "rem::parse at /usr/src/sys/modules/rem/src/desc.rs:12 (30 samples, 75.00%)")
    browser.evaluate("window.prompt = function () { return 'desc.rs:12'; }")
    browser.click(*centre(browser, "document.querySelector('.tb-search')"))
    assert browser.evaluate("document.querySelector('.tb-matched').textContent") == "Matched: 75.0% (1 frame)"
    assert rect_of(browser, "rem::parse")["fill"] == HIGHLIGHT


def test_search_highlights_matches_and_shows_the_share(browser, tmp_path):
    show(browser, tmp_path, render_flamegraph(driver_profile()))
    before = {name: rect_of(browser, name)["fill"] for name in ("em_rxeof", "fork_exit")}
    browser.evaluate("window.prompt = function () { return 'rx_frame|m_free'; }")
    browser.click(*centre(browser, "document.querySelector('.tb-search')"))
    # rx_frame (80) holds m_free (30): the match covers 80 of 130 samples, counted once.
    assert browser.evaluate("document.querySelector('.tb-matched').textContent") == "Matched: 61.5% (2 frames)"
    assert rect_of(browser, "if_rem::rx::rx_frame")["fill"] == HIGHLIGHT
    assert rect_of(browser, "m_free")["fill"] == HIGHLIGHT
    assert {name: rect_of(browser, name)["fill"] for name in before} == before
    assert browser.evaluate("document.querySelector('.tb-search').textContent") == "Reset Search"
    png = browser.screenshot()
    keep(png, "search.png")
    # Plain-text search: the same words are now looked for literally and match nothing.
    browser.click(*centre(browser, "document.querySelector('.tb-regex')"))
    assert browser.evaluate("document.querySelector('.tb-matched').textContent") == "Matched: 0.0% (0 frames)"
    # Substring search finds the mangled symbol too.
    browser.click(*centre(browser, "document.querySelector('.tb-search')"))  # reset
    browser.evaluate("window.prompt = function () { return '8rx_frame17h'; }")
    browser.click(*centre(browser, "document.querySelector('.tb-search')"))
    assert browser.evaluate("document.querySelector('.tb-matched').textContent") == "Matched: 61.5% (1 frame)"
    browser.click(*centre(browser, "document.querySelector('.tb-search')"))  # reset
    assert rect_of(browser, "if_rem::rx::rx_frame")["fill"] != HIGHLIGHT
    assert browser.evaluate("document.querySelector('.tb-matched').textContent").strip() == ""


def test_click_zooms_and_reset_restores(browser, tmp_path):
    profile = driver_profile()
    tiny = Frame("if_rem.ko", "tiny", "if_rem::tiny::frame")
    profile.add([kernel("fork_exit"), kernel("ithread_loop"), rust(), kernel("m_free"), tiny], 2)
    show(browser, tmp_path, render_flamegraph(profile))
    names = ("all", "fork_exit", "ithread_loop", "if_rem::rx::rx_frame", "m_free", "em_rxeof", "if_rem::tiny::frame")
    initial = {name: rect_of(browser, name) for name in names}
    assert initial["if_rem::tiny::frame"]["label"] == ""   # 18 px: too narrow for a label
    browser.click(*centre(browser, frame_js("if_rem::rx::rx_frame") + ".querySelector('rect')"))
    zoomed = rect_of(browser, "if_rem::rx::rx_frame")
    assert (zoomed["x"], zoomed["width"]) == ("0.0000%", "100.0000%")
    assert rect_of(browser, "m_free")["width"] == "39.0244%"  # 32 of rx_frame's 82
    assert not rect_of(browser, "em_rxeof")["shown"]
    for ancestor in ("all", "fork_exit", "ithread_loop"):
        assert "parent" in rect_of(browser, ancestor)["cls"]
        assert rect_of(browser, ancestor)["width"] == "100.0000%"
    assert "hide" not in browser.evaluate("document.querySelector('.tb-unzoom').getAttribute('class')")
    keep(browser.screenshot(), "zoom.png")
    browser.click(*centre(browser, frame_js("m_free") + ".querySelector('rect')"))
    label = rect_of(browser, "if_rem::tiny::frame")
    assert label["shown"] and label["label"] == "if_rem:.."   # 74 px now: labelled
    assert not rect_of(browser, "em_rxeof")["shown"]
    browser.click(*centre(browser, "document.querySelector('.tb-unzoom')"))
    for name in names:
        now = rect_of(browser, name)
        assert (now["x"], now["width"], now["shown"]) == (initial[name]["x"], initial[name]["width"], True)
        assert now["label"] == initial[name]["label"]
        assert "parent" not in now["cls"]
    assert "hide" in browser.evaluate("document.querySelector('.tb-unzoom').getAttribute('class')")
    # Clicking the root also resets.
    browser.click(*centre(browser, frame_js("m_free") + ".querySelector('rect')"))
    browser.click(*centre(browser, frame_js("all") + ".querySelector('rect')"))
    assert rect_of(browser, "em_rxeof")["shown"]


def test_hostile_names_do_not_run(browser, tmp_path):
    profile = Profile()
    for name in ("<script>window.__pwned = 1</script>", "]]><script>window.__pwned = 2</script>",
                 "<img src=x onerror=\"window.__pwned=3\">", "\x00\x07'\"&"):
        profile.add([kernel("root"), Frame("kernel", name, name)], 5)
    show(browser, tmp_path, render_flamegraph(profile, GraphOptions(title="<script>window.__pwned=4</script>")))
    assert browser.evaluate("document.querySelector('parsererror') === null")
    assert browser.evaluate("typeof window.__pwned") == "undefined"
    assert browser.evaluate("document.querySelectorAll('script').length") == 1
    assert not any(e.get("method") == "Page.javascriptDialogOpening" for e in browser.events)
    browser.evaluate("window.prompt = function () { return '<script>'; }")
    browser.click(*centre(browser, "document.querySelector('.tb-search')"))
    assert browser.evaluate("document.querySelector('.tb-matched').textContent") == "Matched: 50.0% (2 frames)"


def test_differential_graph_renders(browser, tmp_path):
    before = folded_profile("main;grows 10\nmain;shrinks 30")
    after = folded_profile("main;grows 30\nmain;shrinks 10")
    svg = render_diff(compare(before, after))
    show(browser, tmp_path, svg, "diff")
    png = browser.screenshot()
    keep(png, "diff.png")
    frames = by_name(drawn(svg))
    x, y = centre(browser, frame_js("grows") + ".querySelector('rect')")
    assert "rgb" + str(pixel(png, int(x) + 100, int(y))).replace(" ", "") == frames["grows"].fill
    browser.click(x, y)
    assert rect_of(browser, "grows")["width"] == "100.0000%"
