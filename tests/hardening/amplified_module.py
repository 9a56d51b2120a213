"""A small module whose function symbols all share one huge name (issue 19, item 4), built with binutils.

    python tests/hardening/amplified_module.py -n 2000 --name-bytes 1048576 -o /tmp/amplified.ko

GNU ``as`` assembles ``n`` tiny functions and one whose name is
``name_bytes`` long; then every function symbol's ``st_name`` is pointed at
that one name (``--suffixes``: at successive offsets inside it, so each is a
different, almost as long, name).  The file stays about ``name_bytes`` large
while a reader that copies each symbol's name holds ``n`` times as much.
"""

from __future__ import annotations

import argparse
import os
import struct
import subprocess
import tempfile

SHT_SYMTAB = 2
STT_FUNC = 2
LONG = "amplified_"


def build(path: str, functions: int, name_bytes: int, suffixes: bool = False) -> None:
    long_name = (LONG + "x" * name_bytes)[:name_bytes]
    lines = [".text"]
    for i in range(functions):
        lines += [f".type f{i},@function", f"f{i}:", "push %rbp", "mov %rsp,%rbp", "pop %rbp", "ret",
                  f".size f{i},.-f{i}"]
    lines += [f".type {long_name},@function", f"{long_name}:", "ret", f".size {long_name},.-{long_name}", ""]
    with tempfile.TemporaryDirectory() as scratch:
        source = os.path.join(scratch, "amplified.s")
        with open(source, "w") as out:
            out.write("\n".join(lines))
        subprocess.run(["as", "--64", "-o", path, source], check=True)
    _share_name(path, suffixes)


def _share_name(path: str, suffixes: bool) -> None:
    """Point every STT_FUNC symbol's name at the long one's (ELF64 little-endian, as ``as --64`` writes)."""
    with open(path, "r+b") as elf:
        data = bytearray(elf.read())
        shoff, = struct.unpack_from("<Q", data, 0x28)
        shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
        for index in range(shnum):
            header = shoff + index * shentsize
            kind, = struct.unpack_from("<I", data, header + 4)
            if kind != SHT_SYMTAB:
                continue
            offset, size = struct.unpack_from("<QQ", data, header + 0x18)
            link, = struct.unpack_from("<I", data, header + 0x28)
            strtab, = struct.unpack_from("<Q", data, shoff + link * shentsize + 0x18)
            symbols = range(offset, offset + size, 24)
            funcs = [s for s in symbols if data[s + 4] & 0xF == STT_FUNC]
            long_at = next(struct.unpack_from("<I", data, s)[0] for s in funcs
                           if data[strtab + struct.unpack_from("<I", data, s)[0]:][:len(LONG)] == LONG.encode())
            for n, symbol in enumerate(funcs):
                struct.pack_into("<I", data, symbol, long_at + (n if suffixes else 0))
        elf.seek(0)
        elf.write(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=2000, help="function symbols (default 2000)")
    parser.add_argument("--name-bytes", type=int, default=1 << 20, help="length of the shared name (1 MB)")
    parser.add_argument("--suffixes", action="store_true", help="each symbol one byte further into the name")
    parser.add_argument("-o", required=True, help="the module to write")
    args = parser.parse_args()
    build(args.o, args.n, args.name_bytes, args.suffixes)


if __name__ == "__main__":
    main()
