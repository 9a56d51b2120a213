"""`tracebridge fold --format speedscope` writes files valid against speedscope's file-format schema."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from tracebridge.cli import main
from tracebridge.readers.folded import split_frames

DATA = Path(__file__).parent.parent / "data"
SCHEMA = json.loads((DATA / "speedscope" / "file-format-schema.json").read_text())


@pytest.mark.parametrize("capture", ["macos-ustack.txt", "illumos-stack-ustack.txt", "flow.txt",
                                     "probefunc-quantize.txt", "freebsd-traced-header.txt"])
def test_valid_and_same_stacks_as_folded(tmp_path, capsys, capture):
    path = DATA / "dtrace" / capture
    out = tmp_path / "profile.speedscope.json"
    assert main(["fold", str(path), "--format", "speedscope", "-o", str(out)]) == 0
    document = json.loads(out.read_text())
    jsonschema.validate(document, SCHEMA)
    (profile,) = document["profiles"]
    frames = document["shared"]["frames"]
    assert len(profile["samples"]) == len(profile["weights"])
    assert profile["endValue"] == sum(profile["weights"])
    assert all(0 <= i < len(frames) for sample in profile["samples"] for i in sample)
    stacks = {}
    for sample, weight in zip(profile["samples"], profile["weights"]):
        key = tuple(frames[i]["name"] for i in sample)
        stacks[key] = stacks.get(key, 0) + weight
    assert main(["fold", str(path)]) == 0
    folded = {}
    for line in capsys.readouterr().out.splitlines():
        stack, _, count = line.rpartition(" ")
        folded[tuple(split_frames(stack))] = int(count)
    assert stacks == folded


def test_schema_rejects_what_speedscope_would():
    good = {"$schema": "https://www.speedscope.app/file-format-schema.json", "version": "0.0.1",
            "shared": {"frames": [{"name": "a"}]},
            "profiles": [{"type": "sampled", "name": "x", "unit": "none", "startValue": 0, "endValue": 1,
                          "samples": [[0]], "weights": [1]}]}
    jsonschema.validate(good, SCHEMA)
    for broken in ({**good, "shared": {"frames": [{"file": "a"}]}},
                   {**good, "profiles": [{**good["profiles"][0], "unit": "samples"}]},
                   {k: v for k, v in good.items() if k != "version"}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, SCHEMA)
