"""Write cxx-names.txt.gz: distinct real C++ (Itanium) symbol names, for tests/image/test_demangle_cxx.py.

    python tests/data/demangle/make_cxx_names.py WHOLE.so... --sample SAMPLED.so...

Every ``_Z`` name of the WHOLE libraries (made with: the Rust toolchain's
librustc_driver-*.so and Debian 12's libstdc++.so.6), and of the SAMPLED ones
(libLLVM-15.so, libclang-cpp.so.14) those LLVM and the pure package were seen to
disagree on (a lambda's ``Ul``), those over 240 characters, and one in 16 of the
rest, chosen by a hash of the name so that the file does not depend on the order
nm lists them in.  Names come from ``nm`` and ``nm -D``; the ``@VERSION`` nm -D
appends is no part of the name and is cut off.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import subprocess
from pathlib import Path


def cxx_names(library: str) -> set[str]:
    names = set()
    for dynamic in ([], ["-D"]):
        listing = subprocess.run(["nm", *dynamic, library], capture_output=True, text=True, errors="surrogateescape")
        for line in listing.stdout.splitlines():
            name = line.split()[-1].split("@", 1)[0] if line.split() else ""
            if name.startswith(("_Z", "__Z")):
                names.add(name)
    return names


def sampled(name: str) -> bool:
    return "Ul" in name or len(name) > 240 or hashlib.sha256(name.encode("utf-8", "surrogateescape")).digest()[0] < 16


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("whole", nargs="+")
    parser.add_argument("--sample", nargs="*", default=[])
    args = parser.parse_args()
    names = set().union(*map(cxx_names, args.whole))
    for library in args.sample:
        names |= {name for name in cxx_names(library) if sampled(name)}
    text = "".join(f"{name}\n" for name in sorted(names))
    out = Path(__file__).with_name("cxx-names.txt.gz")
    out.write_bytes(gzip.compress(text.encode("utf-8", "surrogateescape"), mtime=0))
    print(f"{out}: {len(names)} names, {out.stat().st_size} bytes")


if __name__ == "__main__":
    main()
