"""speedscope's JSON file format: one sampled profile with shared frames.

The format is ``src/lib/file-format-spec.ts`` in jlfwong/speedscope: a
``shared.frames`` list of ``{name, file?}``, and ``profiles`` of type
``sampled`` whose ``samples`` are stacks of frame indices (root first) with
one ``weights`` entry each.  Frames are labelled as in folded output, and
stacks whose labels are equal are merged, so the two outputs agree.
"""

from __future__ import annotations

import json
from typing import IO, Any

from tracebridge.profile.labels import LabelOptions
from tracebridge.profile.model import Profile

SCHEMA_URL = "https://www.speedscope.app/file-format-schema.json"


def speedscope_document(profile: Profile, labels: LabelOptions = LabelOptions(), name: str = "") -> dict[str, Any]:
    profile.require_widths("speedscope")
    frame_index: dict[tuple[str, str | None], int] = {}
    frames: list[dict[str, Any]] = []
    mapping: list[int] = []
    for frame, label in zip(profile.frames, labels.labels(profile)):
        key = (label, frame.module)
        index = frame_index.get(key)
        if index is None:
            index = frame_index[key] = len(frames)
            frames.append({"name": label, "file": frame.module} if frame.module else {"name": label})
        mapping.append(index)
    merged: dict[tuple[int, ...], float] = {}
    for stack, weight in profile.stacks.items():
        key = tuple(mapping[i] for i in stack)
        merged[key] = merged.get(key, 0) + weight
    samples = sorted(merged)
    weights = [merged[s] for s in samples]
    weights = [int(w) if w == int(w) else w for w in weights]
    return {
        "$schema": SCHEMA_URL,
        "version": "0.0.1",
        "name": name or profile.metadata.source,
        "activeProfileIndex": 0,
        "shared": {"frames": frames},
        "profiles": [{
            "type": "sampled",
            "name": name or profile.metadata.source or "tracebridge",
            "unit": "none",
            "startValue": 0,
            "endValue": sum(weights),
            "samples": [list(s) for s in samples],
            "weights": weights,
        }],
    }


def write_speedscope(out: IO[str], profile: Profile, labels: LabelOptions = LabelOptions(), name: str = "") -> None:
    out.write(json.dumps(speedscope_document(profile, labels, name), ensure_ascii=False))
    out.write("\n")
