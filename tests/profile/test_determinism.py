"""Same input, same bytes: frame order must not follow Python's per-run string hashing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize("args", [
    ["if_rem.stack.txt", "--module", "if_rem.ko", "--kldstat", "kldstat.txt"],
    ["if_rem.flow.txt"],
    ["if_rem.count.txt"],
    ["run/"],
])
def test_speedscope_output_independent_of_hash_seed(args):
    outputs = set()
    for seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        result = subprocess.run([sys.executable, "-m", "tracebridge", "fold", *args, "--format", "speedscope"],
                                cwd=EXAMPLES, env=env, capture_output=True, check=True)
        outputs.add(result.stdout)
    assert len(outputs) == 1
