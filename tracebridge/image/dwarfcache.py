"""The address index of a module's DWARF kept on disk, keyed by the relocated DWARF's content.

Building the index reads every DIE and line-table row: a module with 100k
inlined subroutines takes about 0.5 s of CPU with the native core and 1.3 s
without (docs/performance.md), and ``lookup``, ``fold --inline`` and
``gen-probes --at`` on the same build would pay it each time.  The built arrays and texts are saved in one ``.npz``
(numpy, no pickle) under ``$TRACEBRIDGE_CACHE_DIR``, else
``$XDG_CACHE_HOME/tracebridge/dwarf``, else ``~/.cache/tracebridge/dwarf``;
``TRACEBRIDGE_NO_CACHE=1`` turns it off.  The key hashes the relocated
section bytes (so the debug file *and* the layout it was relocated with) and
the symbols that name functions DWARF leaves unnamed.  A cache file that
cannot be read, or does not hold what an index needs, is ignored and
rebuilt; writing it is best effort (a read-only home directory only costs
time).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import zipfile

import numpy as np

#: Bumped whenever what the index holds, or how it is built, changes.
CACHE_VERSION = 2
#: Text columns stored as one NUL-separated UTF-8 byte array each.
TEXTS = ("names", "files", "warnings")


def cache_directory() -> str | None:
    if os.environ.get("TRACEBRIDGE_NO_CACHE") == "1":
        return None
    explicit = os.environ.get("TRACEBRIDGE_CACHE_DIR")
    if explicit:
        return explicit
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "tracebridge", "dwarf")


def cache_key(sections: dict[str, bytes], entry_symbols: dict[int, str]) -> str:
    digest = hashlib.sha256(f"tracebridge-dwarf-index {CACHE_VERSION}\0".encode())
    for name in sorted(sections):
        digest.update(f"{name}\0{len(sections[name])}\0".encode())
        digest.update(sections[name])
    for offset, name in sorted(entry_symbols.items()):
        digest.update(f"{offset}\0{name}\0".encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def load(key: str, arrays: tuple[str, ...]) -> dict | None:
    """The saved state for ``key`` (``arrays`` and :data:`TEXTS`), or None when absent or unusable."""
    directory = cache_directory()
    if directory is None:
        return None
    path = os.path.join(directory, f"{key}.npz")
    try:
        with np.load(path, allow_pickle=False) as data:
            state = {name: data[name] for name in arrays}
            if any(column.ndim != 1 for column in state.values()):
                return None
            for name in TEXTS:
                text = data[name].tobytes().decode("utf-8", "surrogatepass")
                state[name] = text.split("\0") if text else []
    except (OSError, KeyError, ValueError, UnicodeDecodeError, EOFError, zipfile.BadZipFile):
        return None
    return state


def save(key: str, state: dict) -> None:
    """Write ``state`` for ``key`` atomically; failures are silent (the cache only saves time)."""
    directory = cache_directory()
    if directory is None:
        return
    columns = {name: value for name, value in state.items() if name not in TEXTS}
    for name in TEXTS:
        columns[name] = np.frombuffer("\0".join(state[name]).encode("utf-8", "surrogatepass"), dtype=np.uint8)
    try:
        os.makedirs(directory, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=directory, suffix=".npz.tmp")
        try:
            with os.fdopen(handle, "wb") as out:
                np.savez(out, **columns)
            os.replace(temporary, os.path.join(directory, f"{key}.npz"))
        except BaseException:
            os.unlink(temporary)
            raise
    except OSError:
        pass
