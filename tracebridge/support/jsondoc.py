"""Reading tracebridge's own JSON documents (probe maps, bundle manifests).

Each carries ``"format"`` and ``"version"`` so that a wrong or newer file is
refused with a clear message instead of being half understood.
"""

from __future__ import annotations

import json
import os

from tracebridge.support.errors import InputError


def load_document(path: str | os.PathLike[str], fmt: str, version: int, what: str) -> dict:
    """The JSON object in ``path`` if it is a ``fmt`` document of ``version``; else an InputError.

    ``what`` names the document in messages ("probe map", "bundle manifest").
    A missing file raises FileNotFoundError, so callers can say what was
    expected where it is missing.
    """
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
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
        raise InputError(path, f"{what} version {data.get('version')!r} is not {version}")
    return data
