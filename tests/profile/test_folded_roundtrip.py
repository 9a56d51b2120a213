"""Folded stacks: `;` and other special characters in names survive fold -> read folded -> same stacks."""

from __future__ import annotations

import string

from hypothesis import given, settings
from hypothesis import strategies as st

from tracebridge.cli import main
from tracebridge.readers.folded import escape, split_frames
from tracebridge.render.folded import folded_lines
from tracebridge.readers.options import LoadOptions
from tracebridge.readers.registry import load_profile
from tracebridge.profile.model import Frame, Profile

# Names as Rust, C and DTrace string keys spell them, with every separator the format has to survive.
# (A leading letter other than R/Z keeps them from reading as mangled symbols; no backtick: that
# separates a module from a function in DTrace text.)
_NAME = st.builds(lambda first, rest: first + rest,
                  st.sampled_from("abcdefgh<[&*"),
                  st.text(alphabet=string.ascii_letters + string.digits + " ;\\:<>[](){}&*,'#!.-_=+|\t@%",
                          max_size=40)).filter(lambda n: "+0x" not in n)
_STACKS = st.dictionaries(st.lists(_NAME, min_size=1, max_size=6).map(tuple), st.integers(1, 10**9),
                          min_size=1, max_size=20)


def profile_of(stacks: dict[tuple[str, ...], int]) -> Profile:
    profile = Profile()
    for names, weight in stacks.items():
        profile.add([Frame(None, n, n) for n in names], weight)
    return profile


def stacks_of(profile: Profile) -> dict[tuple[str, ...], float]:
    out: dict[tuple[str, ...], float] = {}
    for frames, weight in profile:
        key = tuple(f.name for f in frames)
        out[key] = out.get(key, 0) + weight
    return out


@settings(max_examples=100, deadline=None)
@given(_STACKS)
def test_round_trip_through_text(tmp_path_factory, stacks):
    path = tmp_path_factory.mktemp("fold") / "x.folded"
    path.write_text("".join(line + "\n" for line in folded_lines(profile_of(stacks))))
    assert stacks_of(load_profile([path], LoadOptions(format="folded"))) == stacks


@given(st.lists(_NAME, min_size=1, max_size=8))
def test_escape_then_split_is_identity(names):
    assert split_frames(";".join(escape(n) for n in names)) == names


def test_rust_array_names_round_trip_through_the_cli(tmp_path, capsys):
    name = "<[u32; 4] as rem::em::rx::RxDesc>::from_word"
    capture = tmp_path / "stacks.txt"
    capture.write_text("\n              if_rem.ko`_ZN64_$LT$$u5b$u32$u3b$$u20$4$u5d$$u20$as$u20$rem..em..rx..RxDesc"
                       "$GT$9from_word17h34f214ee447be37fE+0x11\n              kernel`ether_input+0x69\n"
                       "               12\n")
    folded = tmp_path / "out.folded"
    assert main(["fold", str(capture), "-o", str(folded)]) == 0
    assert folded.read_text() == "ether_input;<[u32\\; 4] as rem::em::rx::RxDesc>::from_word 12\n"
    again = tmp_path / "again.folded"
    assert main(["fold", str(folded), "-o", str(again)]) == 0
    assert again.read_text() == folded.read_text()
    assert stacks_of(load_profile([folded])) == {("ether_input", name): 12}


def test_plain_folded_from_other_tools(tmp_path):
    path = tmp_path / "stackcollapse.folded"
    path.write_text("unix`thread_start;unix`idle;unix`cpu_idle_mwait;unix`i86_mwait 1641\n"
                    "genunix`syscall;rem_bench`_ZN3rem2em5ioctl8dispatch17hab378d5a864e6a44E 3\n"
                    "C:\\build\\main;work 2\n"
                    "main;compute 2.5\n")
    assert stacks_of(load_profile([path])) == {
        ("thread_start", "idle", "cpu_idle_mwait", "i86_mwait"): 1641,
        ("syscall", "rem::em::ioctl::dispatch"): 3,
        ("C:\\build\\main", "work"): 2,
        ("main", "compute"): 2.5,
    }


def test_offsets_hash_and_mangled_names(tmp_path, capsys):
    capture = tmp_path / "stacks.txt"
    capture.write_text("\n              if_rem.ko`_ZN3rem2em2rx5rxeof17h84684ba9222bcdc9E+0x1f\n"
                       "              kernel`ether_input+0x69\n               12\n"
                       "\n              if_rem.ko`_ZN3rem2em2rx5rxeof17h84684ba9222bcdc9E+0x30\n"
                       "              kernel`ether_input+0x69\n                3\n")
    assert main(["fold", str(capture)]) == 0
    assert capsys.readouterr().out == "ether_input;rem::em::rx::rxeof 15\n"
    assert main(["fold", str(capture), "--include-offset"]) == 0
    assert capsys.readouterr().out == ("ether_input+0x69;rem::em::rx::rxeof+0x1f 12\n"
                                       "ether_input+0x69;rem::em::rx::rxeof+0x30 3\n")
    assert main(["fold", str(capture), "--hash"]) == 0
    assert capsys.readouterr().out == "ether_input;rem::em::rx::rxeof::h84684ba9222bcdc9 15\n"
    assert main(["fold", str(capture), "--no-demangle"]) == 0
    assert capsys.readouterr().out == "ether_input;_ZN3rem2em2rx5rxeof17h84684ba9222bcdc9E 15\n"


def test_rust_paths_in_folded_text_are_rust(tmp_path):
    """Folded text names no symbols: a `::` path is Rust (with its crate), the rest native code."""
    path = tmp_path / "ours.folded"
    path.write_text("fork_exit;rem_intr;rem::em::rx::rxeof;<[u32\\; 4] as rem::em::rx::RxDesc>::from_word 7\n"
                    "kernel`fork_exit;kernel`m_free 2\n")
    frames = {f.name: f for f in load_profile([path]).frames}
    assert [(f.is_rust, f.crate) for f in map(frames.get, ("rem::em::rx::rxeof",
                                                         "<[u32; 4] as rem::em::rx::RxDesc>::from_word"))] == [
        (True, "rem"), (True, "rem")]
    assert not frames["rem_intr"].is_rust and frames["rem_intr"].module is None
    assert frames["m_free"].module == "kernel" and not frames["m_free"].is_rust
