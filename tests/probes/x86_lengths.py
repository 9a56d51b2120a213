"""The native x86-64 length decoder checked against iced-x86, instruction by instruction.

Shared by tests/probes/test_fbt_native.py (every fixture) and
benchmarks/bench_native.py (every function of the toolchain's librustc_driver,
14 million instructions: too slow for the suite).  Needs iced-x86 and the
package only, not the test dependencies: the benchmark runs in a plain venv.
"""

from __future__ import annotations

from iced_x86 import Code, Decoder, Instruction


def iced_length(code: bytes) -> int:
    """Length of the instruction at the start of ``code`` by iced-x86, 0 when it is invalid."""
    instruction = Instruction()
    Decoder(64, code + bytes(32)).decode_out(instruction)
    return 0 if instruction.code == Code.INVALID else instruction.len


def check_every_instruction(core, code: bytes) -> int:
    """Walk ``code`` with iced-x86 and compare the native length of each instruction the native tables
    decide; returns how many were compared, raises AssertionError at the first that differs."""
    padded = code + bytes(32)
    instruction = Instruction()
    decoder = Decoder(64, padded)
    pos = compared = 0
    while pos < len(code):
        decoder.position = pos
        decoder.decode_out(instruction)
        reference = 0 if instruction.code == Code.INVALID else instruction.len
        ours = core.x86_length(padded[pos:pos + 32])
        if ours != -1:
            if ours != reference:
                raise AssertionError(f"{padded[pos:pos + 16].hex()}: native {ours}, iced-x86 {reference}")
            compared += 1
        if reference == 0:
            break
        pos += reference
    return compared
