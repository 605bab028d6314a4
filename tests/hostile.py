"""Hostile inputs for every reader of run files (issue 10, items 11-12), as one table.

Each row makes one crafted file and names a fragment every reader's refusal must contain. A new
reader (``summary``, ``plot``, ``train --resume``, ``--config``) is added to the readers of
``test_hostile_inputs.py`` and so meets every row at once.
"""

from __future__ import annotations

import io
import os
import socket
import struct
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Hostile:
    name: str
    make: Callable[[Path], Path]  # builds the file in a folder, returns its path
    fragment: str  # in every reader's one-line refusal
    npz: bool = True  # a run-file reader is fooled by its content (False: only by what the file is)


def _npz(folder: Path, name: str, **arrays) -> Path:
    path = folder / name
    np.savez(path, **arrays)
    return path


def _good(folder: Path) -> Path:
    return _npz(folder, "good.npz", format_version=np.int64(1), config=np.str_('{"epochs": 2}'),
                loss=np.zeros(4, np.float32))


def fifo(folder: Path) -> Path:
    os.mkfifo(folder / "p.npz")
    return folder / "p.npz"


def dev_zero(folder: Path) -> Path:
    os.symlink("/dev/zero", folder / "z.npz")
    return folder / "z.npz"


def a_folder(folder: Path) -> Path:
    (folder / "d.npz").mkdir()
    return folder / "d.npz"


def a_socket(folder: Path) -> Path:
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(folder / "s.npz"))  # the file stays after the socket closes
    sock.close()
    return folder / "s.npz"


def truncated(folder: Path) -> Path:
    data = _good(folder).read_bytes()
    (folder / "t.npz").write_bytes(data[: len(data) // 2])
    return folder / "t.npz"


def not_a_zip(folder: Path) -> Path:
    (folder / "n.npz").write_bytes(b"\x93NUMPY not really" * 10)
    return folder / "n.npz"


def _npy(header: dict, payload: bytes = b"") -> bytes:
    text = repr(header).encode("latin1")
    text += b" " * (63 - (len(text) + 10) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + payload


def _zip(folder: Path, name: str, members: dict[str, bytes]) -> Path:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for member, data in members.items():
            zf.writestr(member, data)
    (folder / name).write_bytes(buffer.getvalue())
    return folder / name


def huge_claim(folder: Path) -> Path:
    """A header claiming 10**11 float32 numbers (400 GB) over 16 bytes of data."""
    header = {"descr": "<f4", "fortran_order": False, "shape": (10**11,)}
    return _zip(folder, "huge.npz", {"loss.npy": _npy(header, b"\0" * 16)})


def inflating(folder: Path) -> Path:
    """Issue 21, case 3: an honest header of 200,000,000 float32 (800 MB) whose data deflates from
    3.7 MB of zeros; every reader inflated it all before refusing the file."""
    path = folder / "inflating.npz"
    header = {"descr": "<f4", "fortran_order": False, "shape": (200_000_000,)}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.writestr("format_version.npy", _npy({"descr": "<i8", "fortran_order": False, "shape": ()},
                                               struct.pack("<q", 2)))
        with zf.open("loss.npy", "w", force_zip64=True) as member:
            member.write(_npy(header))
            zeros = bytes(2**24)
            for start in range(0, 800_000_000, len(zeros)):
                member.write(zeros[: min(len(zeros), 800_000_000 - start)])
    return path


def short_data(folder: Path) -> Path:
    header = {"descr": "<f4", "fortran_order": False, "shape": (1000,)}
    return _zip(folder, "short.npz", {"loss.npy": _npy(header, b"\0" * 16)})


def pickled(folder: Path) -> Path:
    header = {"descr": "|O", "fortran_order": False, "shape": (1,)}
    return _zip(folder, "pickled.npz", {"loss.npy": _npy(header, b"\x80\x04N.")})


def config_list(folder: Path) -> Path:
    return _npz(folder, "list.npz", format_version=np.int64(1), config=np.str_("[1, 2]"))


def config_deep(folder: Path) -> Path:
    return _npz(folder, "deep.npz", format_version=np.int64(1), config=np.str_("[" * 100_000 + "]" * 100_000))


def config_not_json(folder: Path) -> Path:
    return _npz(folder, "notjson.npz", format_version=np.int64(1), config=np.str_("{epochs: 2"))


HOSTILE = [
    Hostile("FIFO", fifo, "FIFO", npz=False),
    Hostile("symlink to /dev/zero", dev_zero, "character device", npz=False),
    Hostile("folder", a_folder, "folder", npz=False),
    Hostile("socket", a_socket, "socket", npz=False),
    Hostile("truncated zip", truncated, "truncated"),
    Hostile("not a zip", not_a_zip, "not an .npz"),
    Hostile("header claims 10**11 elements", huge_claim, "claims 100,000,000,000 elements"),
    Hostile("header claims more than the data", short_data, "header does not match"),
    Hostile("member deflates to 800 MB", inflating, "more than 16 times its size"),
    Hostile("pickled member", pickled, "pickled"),
    Hostile("config is a list", config_list, "not a JSON object"),
    Hostile("config nested 100,000 deep", config_deep, "nested 100,000 levels"),
    Hostile("config is not JSON", config_not_json, "not valid JSON"),
]

GOOD = _good
