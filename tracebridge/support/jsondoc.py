"""Reading tracebridge's own JSON documents (probe maps, bundle manifests).

Each carries ``"format"`` and ``"version"`` so that a wrong or newer file is
refused with a clear message instead of being half understood.
"""

from __future__ import annotations

import json
import os

from tracebridge.support.errors import InputError, excerpt

#: Bytes read at most from one document (a probe map of 10^6 functions is about 300 MB).
MAX_DOCUMENT = 1 << 30


def load_document(path: str | os.PathLike[str], fmt: str, version: int, what: str,
                  limit: int = MAX_DOCUMENT) -> dict:
    """The JSON object in ``path`` if it is a ``fmt`` document of ``version``; else an InputError.

    ``what`` names the document in messages ("probe map", "bundle manifest").
    A missing file raises FileNotFoundError, so callers can say what was
    expected where it is missing.  At most ``limit`` bytes are read: a file
    that holds more (``/dev/zero``) is refused, not read until memory ends.
    """
    try:
        with open(path, "rb") as handle:
            text = handle.read(limit + 1)
        if len(text) > limit:
            raise InputError(path, f"is larger than {limit >> 20} MB: not a tracebridge {what}")
        data = json.loads(text.decode("utf-8"))
    except FileNotFoundError:
        raise
    except IsADirectoryError:
        raise InputError(path, f"is a directory, not a {what}") from None
    # ValueError: JSONDecodeError, and int()'s refusal of numbers of over 4300 digits.
    except (OSError, ValueError, RecursionError) as exc:
        raise InputError(path, f"not a tracebridge {what}: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != fmt:
        raise InputError(path, f"not a tracebridge {what} (no \"format\": \"{fmt}\")")
    if data.get("version") != version:
        raise InputError(path, f"{what} version {excerpt(path, str(data.get('version')))} is not {version}")
    return data
