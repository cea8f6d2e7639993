"""An image folder of small JPEGs as one compact file, and back, bit for bit.

The CIFAR-10 JPEG copy's 60,000 files share one 609-byte header (the JFIF,
quantisation and Huffman tables) and average 924 bytes each, so two thirds
of the folder is the same header again and again. A pack stores each
distinct header once and every file's remaining bytes (from the start-of-
scan marker on): about 20 MB instead of 57 MB (236 MB on disk). That fits
the 64 MiB a GPU machine can be sent, so the reference runs can be trained
there on exactly the shipped pixels. Unpacking rebuilds identical files.

Layout: 8-byte magic, 8-byte little-endian index length, the index (JSON:
headers as hex, then [relative path, header number or -1, length] per file
in order), then the files' bodies back to back.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

from ..errors import ResExplorerError

MAGIC = b"RXJPACK1"
START_OF_SCAN = b"\xff\xda"


def _split(data: bytes) -> tuple[bytes, bytes]:
    """(header, rest) of a JPEG at its first start-of-scan marker; a file
    without one is all rest (kept whole)."""
    if data[:2] != b"\xff\xd8":
        return b"", data
    at = data.find(START_OF_SCAN)
    return (data[:at], data[at:]) if at > 0 else (b"", data)


def pack_folder(folder: str | Path, out: str | Path) -> dict:
    """Every file under `folder` into one pack file; returns counts and sizes."""
    folder = Path(folder)
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    if not files:
        raise ResExplorerError(f"{folder}: no files to pack")
    headers: dict[bytes, int] = {}
    entries, bodies, original = [], [], 0
    for path in files:
        data = path.read_bytes()
        original += len(data)
        header, body = _split(data)
        number = headers.setdefault(header, len(headers)) if header else -1
        entries.append([path.relative_to(folder).as_posix(), number, len(body)])
        bodies.append(body)
    index = json.dumps({"headers": [h.hex() for h in headers], "files": entries}, separators=(",", ":")).encode()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "wb") as f:
        f.write(MAGIC + struct.pack("<Q", len(index)) + index)
        for body in bodies:
            f.write(body)
    return {
        "files": len(files),
        "headers": len(headers),
        "original_bytes": original,
        "packed_bytes": out.stat().st_size,
    }


def unpack_folder(pack: str | Path, folder: str | Path) -> int:
    """Recreate the packed files under `folder`; returns how many."""
    pack = Path(pack)
    try:
        data = pack.read_bytes()
    except OSError as err:
        raise ResExplorerError(f"cannot read {pack}: {err.strerror}") from err
    if data[:8] != MAGIC:
        raise ResExplorerError(f"{pack} is not an image pack (made by `python -m resexplorer pack-images`)")
    (length,) = struct.unpack("<Q", data[8:16])
    index = json.loads(data[16 : 16 + length])
    headers = [bytes.fromhex(h) for h in index["headers"]]
    offset, folder = 16 + length, Path(folder)
    for relative, number, size in index["files"]:
        target = folder / relative
        if ".." in Path(relative).parts:
            raise ResExplorerError(f"{pack}: refusing to write outside {folder}: {relative}")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((headers[number] if number >= 0 else b"") + data[offset : offset + size])
        offset += size
    if offset != len(data):
        raise ResExplorerError(f"{pack} is damaged: {len(data) - offset} bytes do not belong to any file")
    return len(index["files"])
