"""Real-world DTrace output shapes fold to exactly rustc-demangle's names."""

from __future__ import annotations

import re
import shutil

import pytest

import readelf_text
from fixture_paths import EXPECTED, MODULES
from tracebridge.cli import main
from tracebridge.readers.dtrace import Histogram
from tracebridge.readers.folded import split_frames
from tracebridge.readers.options import LoadOptions
from tracebridge.readers.registry import load_inputs, load_profile
from truth import DATA, ReadelfModule, rustfilt_lines, truth_stacks

BASE = 0xffffffff82e1c000


def named_stacks(profile) -> dict[tuple[str, ...], float]:
    out: dict[tuple[str, ...], float] = {}
    for frames, weight in profile:
        key = tuple(f.name for f in frames)
        out[key] = out.get(key, 0) + weight
    return out


def fold_cli(capsys, *args) -> dict[tuple[str, ...], float]:
    assert main(["fold", *map(str, args)]) == 0
    out: dict[tuple[str, ...], float] = {}
    for line in capsys.readouterr().out.splitlines():
        stack, _, count = line.rpartition(" ")
        out[tuple(split_frames(stack))] = float(count)
    return out


@pytest.mark.parametrize("capture", ["macos-ustack", "illumos-stack-ustack"])
def test_user_stacks_fold_to_rustfilt_names(capsys, capture):
    expected = truth_stacks(f"{capture}.truth")
    assert fold_cli(capsys, DATA / f"{capture}.txt") == expected


@pytest.fixture
def if_rem(tmp_path):
    """The legacy fixture module under the name the captures use."""
    path = tmp_path / "if_rem.ko"
    shutil.copy(MODULES / "rem_legacy_fp.ko", path)
    return path


def expected_kernel_stacks(capture: str, weights_from_counts: bool = True) -> dict[tuple[str, ...], float]:
    """Names from readelf's layout and the saved rustfilt listing, parsed without tracebridge."""
    module = ReadelfModule("rem_legacy_fp", BASE)
    stacks: dict[tuple[str, ...], float] = {}
    frames: list[str] = []

    def name(text: str) -> str:
        hex_address = re.fullmatch(r"(?:if_rem\.ko`)?0x([0-9a-f]+)", text)
        if hex_address and module.name(int(hex_address.group(1), 16)):
            return module.name(int(hex_address.group(1), 16))
        return re.sub(r"^[^`]*`(?!0x)|\+0x[0-9a-f]+$", "", text)

    def close(weight: float) -> None:
        key = tuple(name(f) for f in reversed(frames))
        stacks[key] = stacks.get(key, 0) + weight
        frames.clear()

    for line in (DATA / capture).read_text().splitlines():
        text = line.strip()
        if text.isdigit() and weights_from_counts:
            close(int(text))
        elif line.startswith("              "):
            frames.append(text)
        elif not text and frames and not weights_from_counts:
            close(1)
    return stacks


def test_freebsd_hex_frames_resolve_with_base(capsys, if_rem):
    expected = expected_kernel_stacks("freebsd-stack-hex.txt")
    assert any("rem::" in frame for stack in expected for frame in stack)
    assert fold_cli(capsys, DATA / "freebsd-stack-hex.txt", "--module", if_rem, "--base", f"{BASE:x}") == expected


def test_freebsd_hex_frames_resolve_with_kldstat(capsys, if_rem, tmp_path):
    kldstat = tmp_path / "kldstat.txt"
    kldstat.write_text("Id Refs Address                Size Name\n"
                       " 1   42 0xffffffff80200000  1f3c6c8 kernel\n"
                       f" 7    1 0x{BASE:x}     {0x3000:x} if_rem.ko\n")
    expected = expected_kernel_stacks("freebsd-stack-hex.txt")
    assert fold_cli(capsys, DATA / "freebsd-stack-hex.txt", "--module", if_rem, "--kldstat", kldstat) == expected


def test_hex_frames_stay_hex_without_layout():
    stacks = named_stacks(load_profile([DATA / "freebsd-stack-hex.txt"]))
    leaves = {stack[-1] for stack in stacks}
    assert all(re.fullmatch(r"(if_rem\.ko`)?0x[0-9a-f]+|spinlock_exit", leaf) for leaf in leaves)


def test_traced_stacks_under_header_lines(if_rem):
    expected = expected_kernel_stacks("freebsd-traced-header.txt", weights_from_counts=False)
    options = LoadOptions(modules=(str(if_rem),), bases=(BASE,))
    assert named_stacks(load_profile([DATA / "freebsd-traced-header.txt"], options)) == expected
    assert sum(expected.values()) == 6  # six firings with a stack; the tick-10s firing traced none


def test_probefunc_counts_and_cut_names(if_rem):
    text = (DATA / "probefunc-count.txt").read_text()
    rows = [line.rsplit(None, 1) for line in text.splitlines() if line.strip()]
    assert any(len(k.strip()) == 255 for k, _ in rows), "the capture should hold a name DTrace cut at strsize"
    # With the module at hand, cut names are completed from its symbol table.
    loaded = load_inputs([DATA / "probefunc-count.txt"], LoadOptions(modules=(str(if_rem),)))
    symbols = [s.name for s in readelf_text.symbols(EXPECTED / "rem_legacy_fp.readelf-s.txt") if s.type == "FUNC"]
    demangled = dict(zip(symbols, rustfilt_lines(symbols)))
    expected = {}
    for key, value in rows:
        (symbol,) = [s for s in symbols if s.startswith(key.strip())]
        expected[(demangled[symbol],)] = expected.get((demangled[symbol],), 0) + int(value)
    assert named_stacks(loaded.profile) == expected
    (table,) = loaded.aggregations
    assert table.kind == "count" and len(table.rows) == len(rows)
    # probefunc keys name no module: the module whose symbols they are is filled in.
    assert {frame.module for frame in loaded.profile.frames} == {"if_rem.ko"}
    alone = load_inputs([DATA / "probefunc-count.txt"])
    assert {frame.module for frame in alone.profile.frames} == {None}


def test_quantize_buckets_kept():
    loaded = load_inputs([DATA / "probefunc-quantize.txt"])
    (table,) = loaded.aggregations
    assert table.kind == "quantize" and len(table.rows) == 3
    for row in table.rows:
        assert isinstance(row.value, Histogram)
        lows = [b.low for b in row.value.buckets]
        assert lows == [128, 256, 512, 1024, 2048, 4096, 8192]
    # Weights in the profile are the number of events per key.
    assert sorted(named_stacks(loaded.profile).values()) == sorted(r.value.total for r in table.rows)


def test_lquantize_and_llquantize_buckets():
    (lq,) = load_inputs([DATA / "lquantize.txt"]).aggregations
    assert lq.kind == "lquantize"
    first = lq.rows[0].value.buckets
    assert [(b.label, b.count) for b in first] == [
        ("< 0", 0), ("0", 3), ("10", 7), ("20", 12), ("30", 0), ("40", 4), ("50", 0), ("60", 0), ("70", 0),
        ("80", 0), ("90", 0), (">= 100", 1)]
    assert [b.label for b in lq.rows[1].value.buckets] == ["< 0", "0", "10"]
    (llq,) = load_inputs([DATA / "llquantize.txt"]).aggregations
    assert llq.kind == "llquantize" and llq.rows[0].keys == ()
    counts = {b.label: b.count for b in llq.rows[0].value.buckets}
    assert counts["2"] == 3 and counts["5"] == 9 and counts["30"] == 4 and counts["700"] == 1
    assert llq.rows[0].value.total == 17


def test_flow_call_counts(capsys, if_rem):
    stacks = fold_cli(capsys, DATA / "flow.txt", "--module", if_rem)
    long_name = next(s for s in stacks if len(s) == 2 and s[1].startswith("<rem::compat"))
    assert long_name[1].endswith("::handle_deferred_load_completion_callback")
    assert stacks == {
        ("rem::em::ioctl::dispatch",): 2,
        ("rem::em::ioctl::dispatch", "rem::em::ioctl::set_mtu"): 2,
        ("rem::em::ioctl::dispatch", "rem::em::ioctl::set_mtu", "rem::hw::regs::write"): 2,
        ("rem::em::ioctl::dispatch", "rem::em::ioctl::set_flags"): 1,
        ("rem::em::ioctl::dispatch", "rem::em::ioctl::set_flags", "rem::hw::regs::write"): 1,
        long_name: 1,
    }


def test_flow_tail_call_without_return(tmp_path):
    path = tmp_path / "flow.txt"
    path.write_text("CPU FUNCTION\n"
                    "  1  -> a\n"
                    "  1    -> b\n"        # b tail-calls c: no `<- b`
                    "  1      -> c\n"
                    "  1      <- c\n"
                    "  1  <- a\n"
                    "  1  -> a\n"
                    "  0  <- z\n")          # returned from before tracing began
    assert named_stacks(load_profile([path])) == {("a",): 2, ("a", "b"): 1, ("a", "b", "c"): 1}


def write(tmp_path, text: str):
    path = tmp_path / "capture.txt"
    path.write_text(text)
    return path


def test_string_and_integer_keys_become_roots(tmp_path):
    pad = "  %-50s" % "sshd"
    text = (f"\n{pad}\n              kernel`foo+0x1\n              kernel`bar+0x2\n                3\n"
            f"\n             1234\n              kernel`foo+0x1\n                5\n")
    assert named_stacks(load_profile([write(tmp_path, text)])) == {
        ("sshd", "bar", "foo"): 3, ("1234", "foo"): 5}


def test_keyless_and_integer_key_values(tmp_path):
    text = "\n             4242\n\n               0                7\n               1               11\n"
    loaded = load_inputs([write(tmp_path, text)])
    assert [len(a.rows) for a in loaded.aggregations] == [1, 2]
    assert named_stacks(loaded.profile) == {("0",): 7, ("1",): 11}


def test_tick_exit_then_aggregation(tmp_path):
    text = ("CPU     ID                    FUNCTION:NAME\n"
            "  3  81273                        :tick-10s \n\n"
            "\n              kernel`foo+0x1\n              kernel`bar+0x2\n               12\n")
    assert named_stacks(load_profile([write(tmp_path, text)])) == {("bar", "foo"): 12}


def test_avg_values_are_tables_not_stacks(tmp_path):
    path = write(tmp_path, "\n  foo                                                             17\n")
    loaded = load_inputs([path], LoadOptions(value_kinds=("avg",)))
    assert loaded.aggregations[0].kind == "avg" and not loaded.profile.stacks


def test_several_aggregations_in_one_output():
    """gen-probes' latency template: @ns quantize, @avg_ns avg, @total_ns sum, all by probefunc."""
    loaded = load_inputs([DATA / "latency.txt"], LoadOptions(value_kinds=("avg", "sum")))
    assert [a.kind for a in loaded.aggregations] == ["quantize", "avg", "sum"]
    assert [len(a.rows) for a in loaded.aggregations] == [3, 3, 3]
    calls = {row.keys[0].name: row.value.total for row in loaded.aggregations[0].rows}
    assert named_stacks(loaded.profile) == {(name,): total for name, total in calls.items()}
    assert loaded.profile.metadata.unit == "values" and loaded.profile.metadata.event == "quantize"
    summed = load_inputs([DATA / "latency.txt"], LoadOptions(value_kinds=("avg", "sum"), aggregation=3))
    assert named_stacks(summed.profile) == {(r.keys[0].name,): r.value for r in loaded.aggregations[2].rows}
    assert summed.profile.metadata.unit == "sum"


def test_fold_refuses_values_that_are_not_samples(tmp_path, capsys):
    path = write(tmp_path, "\n  foo                                                             17\n")
    assert main(["fold", str(path), "--value-kind", "avg"]) == 2
    assert "no stacks to fold" in capsys.readouterr().err


def test_flow_template_per_thread(tmp_path):
    """gen-probes' flow template: CPU, thread, timestamp, per-thread indentation; unpaired entries."""
    path = tmp_path / "flow.txt"
    lines = [(0, 100, 10, 0, "->", "a"), (1, 200, 11, 0, "->", "x"),
             (0, 100, 12, 2, "->", "b"),          # b has no return probe: its -> does not indent
             (0, 100, 13, 2, "->", "c"),
             (1, 100, 14, 4, "->", "d"),          # thread 100 moved to CPU 1 (printed out of order below)
             (1, 100, 16, 2, "<-", "c"),
             (0, 100, 17, 0, "<-", "a"), (1, 200, 18, 0, "<-", "x")]
    lines.sort(key=lambda e: e[0])  # each CPU's buffer is printed in turn
    path.write_text("".join(f"{cpu:3d} {tid:6d} {ts} {'':{ind}}{arrow} {fn}\n"
                            for cpu, tid, ts, ind, arrow, fn in lines))
    assert named_stacks(load_profile([path])) == {
        ("a",): 1, ("a", "b"): 1, ("a", "c"): 1, ("a", "c", "d"): 1, ("x",): 1}


def test_probe_map_names_globbed_fields(tmp_path):
    probemap = pytest.importorskip("tracebridge.probes.probemap")
    refill = "_ZN3rem2em2rx16Adapter$LT$T$GT$6refill17hc15f6da71de9a8caE"
    long_name = next(s.name for s in readelf_text.symbols(EXPECTED / "rem_legacy_fp.readelf-s.txt")
                     if s.name.startswith("_ZN316_"))
    entries = [probemap.ProbeMapEntry(function=refill.replace("$", "?"), mangled=refill,
                                      demangled="rem::em::rx::Adapter<T>::refill", offset=0x650, size=0x6f,
                                      entry=True, ret=True),
               probemap.ProbeMapEntry(function=long_name[:100].replace("$", "?") + "*" + long_name[-40:],
                                      mangled=long_name, demangled="", offset=0x200, size=0x4c,
                                      entry=True, ret=True)]
    map_path = tmp_path / "probes.json"
    probemap.ProbeMap(module="if_rem.ko", modname="if_rem", machine="amd64", template="count", base=None,
                      size=0x2d90, scripts=["probes.d"], entries=entries).save(map_path)
    capture = write(tmp_path, "\n  %-50s %16d\n  %-50s %16d\n  %-50s %16d\n" % (
        refill.replace("$", "?"), 5, long_name[:191], 7, entries[1].function, 2))
    (demangled_refill, demangled_long) = rustfilt_lines([refill, long_name])
    stacks = named_stacks(load_profile([capture], LoadOptions(probe_map=str(map_path))))
    assert stacks == {(demangled_refill,): 5, (demangled_long,): 9}


def test_integer_keyed_histogram(tmp_path):
    header = "\n%16s %41s %-9s\n" % ("value", "------------- Distribution -------------", "count")
    row = "%16d |%-40s %-9d\n"
    text = (" %16d" % 3 + header + row % (0, "", 0) + row % (1, "@" * 40, 4) + row % (2, "", 0) + "\n")
    (table,) = load_inputs([write(tmp_path, text)]).aggregations
    assert table.kind == "quantize" and table.rows[0].keys[0].name == "3" and table.rows[0].value.total == 4


def test_hex_only_capture(if_rem):
    """No symbols at all: module addresses resolve from the layout, the rest stay hex."""
    module = ReadelfModule("rem_legacy_fp", BASE)
    expected: dict[tuple[str, ...], float] = {}
    frames: list[str] = []
    for line in (DATA / "freebsd-hex-only.txt").read_text().splitlines():
        text = line.strip()
        if text.isdigit():
            key = tuple(module.name(int(f, 16)) or f for f in reversed(frames))
            expected[key] = expected.get(key, 0) + int(text)
            frames = []
        elif text:
            frames.append(text)
    assert any(name.startswith("0xffffffff80b") for stack in expected for name in stack)
    assert any("rem::" in name for stack in expected for name in stack)
    options = LoadOptions(modules=(str(if_rem),), bases=(BASE,))
    assert named_stacks(load_profile([DATA / "freebsd-hex-only.txt"], options)) == expected


def test_stackindent_zero(tmp_path):
    """`dtrace -x stackindent=0`: frames at column 0, plain and after a string key."""
    plain = tmp_path / "plain.txt"
    plain.write_text("\nkernel`foo+0x1\nkernel`bar+0x2\n12\n\nkernel`foo+0x1\n0xffffffff80a0b0c0\n3\n")
    assert named_stacks(load_profile([plain])) == {("bar", "foo"): 12, ("0xffffffff80a0b0c0", "foo"): 3}
    keyed = tmp_path / "keyed.txt"
    keyed.write_text("\n  %-50s\nkernel`foo+0x1\nkernel`bar+0x2\n               12\n" % "sshd")
    assert named_stacks(load_profile([keyed])) == {("sshd", "bar", "foo"): 12}


LATENCY = (DATA / "latency.txt").read_text()
SET_MTU = "_ZN3rem2em5ioctl7set_mtu17h5579ab026e370fe1E"


def latency_with(tmp_path, average: int | None = None, total: int | None = None, tail: str = "") -> list[str]:
    """latency.txt with set_mtu's average (histogram rows 1024..8192 used) or total changed: the kinds read."""
    text = LATENCY
    if average is not None:
        text = text.replace(f"{SET_MTU}                   4694\n", f"{SET_MTU}{average:>23}\n")
    if total is not None:
        text = text.replace(f"{SET_MTU}                 189044\n", f"{SET_MTU}{total:>21}\n")
    path = write(tmp_path, text + tail)
    return [a.kind for a in load_inputs([path]).aggregations]


LATENCY_KINDS = ["quantize", "avg", "sum"]
NOT_LATENCY = ["quantize", "count", "count"]


@pytest.mark.parametrize(("average", "total", "kinds"), [
    (None, None, LATENCY_KINDS),
    (1024, None, LATENCY_KINDS),      # the lowest bucket with calls
    (1023, None, NOT_LATENCY),        # below it (512's bucket is printed, with no calls)
    (16384, None, LATENCY_KINDS),     # twice the highest bucket with calls: still inside it
    (16385, None, NOT_LATENCY),
    (4694, 4694, LATENCY_KINDS),      # one call: the total is the average
    (4694, 4693, NOT_LATENCY),        # a total below the average is no sum of the same calls
])
def test_latency_template_is_told_by_its_shape(tmp_path, capsys, average, total, kinds):
    """Without --value-kind, the latency template's avg and sum tables are recognised by their values."""
    assert latency_with(tmp_path, average, total) == kinds
    assert ("read as the latency template" in capsys.readouterr().err) == (kinds == LATENCY_KINDS)


def test_latency_shape_needs_three_tables_of_the_same_single_keys(tmp_path):
    fourth = "\n  _ZN3rem2em5ioctl7set_mtu17h5579ab026e370fe1E                      7\n"
    assert latency_with(tmp_path, tail=fourth) == NOT_LATENCY + ["count"]
    missing = LATENCY.replace("  _ZN3rem2em5ioctl8dispatch17hab378d5a864e6a44E                860006\n", "")
    assert [a.kind for a in load_inputs([write(tmp_path, missing)]).aggregations] == NOT_LATENCY
    keyed = re.sub(r"^  (_ZN\S+)( +)(\d+)$", r"  \1  x\2\3", LATENCY, flags=re.M)  # @[probefunc, "x"]
    keyed = re.sub(r"^  (_ZN\S+) *$", r"  \1  x", keyed, flags=re.M)
    assert [a.kind for a in load_inputs([write(tmp_path, keyed)]).aggregations] == NOT_LATENCY
    # @ns[probefunc, stack()] = quantize(...): the histograms are the profile, the tables stay counts.
    stacked = re.sub(r"^(  _ZN\S+ *\n)(           value)", r"\1              kernel`amd64_syscall+0x3a0\n\2",
                     LATENCY, flags=re.M)
    assert [a.kind for a in load_inputs([write(tmp_path, stacked)]).aggregations] == ["count", "count"]
    other = LATENCY.replace("           16384 |", "           10000 |", 1)  # the first histogram: llquantize
    assert [a.kind for a in load_inputs([write(tmp_path, other)]).aggregations] == ["llquantize", "count", "count"]
