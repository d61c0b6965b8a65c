"""Test helper: rewrite one pickled entry of an SB3 ``.zip`` model, as a tampered or
old-format file would hold it."""

import base64
import io
import json
import zipfile
from pathlib import Path


def replace_serialized(path: Path, key: str, blob: bytes) -> None:
    """Put ``blob`` (pickle bytes) as the serialized value of ``key`` in the model's data."""
    with zipfile.ZipFile(path) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    data = json.loads(files["data"])
    data[key][":serialized:"] = base64.b64encode(blob).decode()
    files["data"] = json.dumps(data).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    Path(path).write_bytes(buffer.getvalue())
