"""Writing a file atomically: a crash, a kill or a full disk leaves the old file or the new one,
never part of one. The one writer of whole files in ddpgx (`Config.save`, the exported policies, a
sweep's JSON files); a checkpoint, several files, is a directory renamed as a whole
(`checkpoint.py`).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any


def write_atomically(path: str | Path, data: bytes | str | Callable[[IO[bytes]], Any]) -> Path:
    """Write `data` (bytes, text as UTF-8, or a function that writes to the open binary file) to a
    temporary file beside `path`, then rename it onto `path`. Makes the parent directory if needed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # the process and the thread in the name: two writers of one path never share a temporary file
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    try:
        with open(tmp, "wb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data.encode() if isinstance(data, str) else data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_json(path: str | Path, value: Any) -> Path:
    """`value` as indented JSON, written atomically."""
    return write_atomically(path, json.dumps(value, indent=2) + "\n")
