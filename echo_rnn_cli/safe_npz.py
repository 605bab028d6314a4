"""Reading run files that may be crafted: every claim a file makes is checked before it is believed.

``np.load`` trusts an array's header: a header claiming 10**11 elements makes it allocate that
much, and a run file's JSON config is parsed without a depth limit. Here a member is read only when
its header is a plain (not pickled) dtype, claims at most ``max_elements`` elements, and claims
exactly the bytes the zip member holds; JSON is refused past ``MAX_DEPTH`` levels before parsing.
Every refusal is one ``NpzError`` line naming the file and the fault.
"""

from __future__ import annotations

import json
import math
import os
import zipfile
import zlib
from typing import Any, BinaryIO

import numpy as np

from .guards import GuardError, open_regular

#: Far above any run file (the largest arrays are snapshots of a few thousand numbers).
MAX_ELEMENTS = 10**9
MAX_BYTES = 2**32
#: echo-rnn writes its run files uncompressed (``np.savez``), so their members unpack to about the
#: file's own size; a member that deflates from zeros (a 3.9 MB file whose loss unpacks to 4 GB)
#: is refused before anything is inflated. The ratio leaves room for a run file zipped again.
MAX_INFLATION = 16
INFLATION_SLACK = 2**20
#: Our configs are one level deep; the versions map too.
MAX_DEPTH = 32
MAX_JSON_CHARS = 10**6
_JSON_KINDS = {list: "a JSON array", str: "a JSON string", int: "a JSON number", float: "a JSON number",
               bool: "a JSON boolean", type(None): "JSON null"}


class NpzError(GuardError):
    """A run file that cannot be read safely; one line, exit code 2."""


def _header(member: BinaryIO, name: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    version = np.lib.format.read_magic(member)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(member)
    if version == (2, 0):
        return np.lib.format.read_array_header_2_0(member)
    raise ValueError(f"member {name!r} has .npy format {version[0]}.{version[1]}, which echo-rnn never writes")


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, max_elements: int) -> np.ndarray:
    name = info.filename[:-4]
    with zf.open(info) as member:
        shape, fortran, dtype = _header(member, name)
        if dtype.hasobject:
            raise ValueError(f"member {name!r} holds pickled Python objects, which echo-rnn never writes "
                             "and will not load")
        count = math.prod(shape)
        if count > max_elements:
            raise ValueError(f"member {name!r} claims {count:,} elements, more than the {max_elements:,} "
                             "a run file can hold")
        size = count * dtype.itemsize
        if size != info.file_size - member.tell():
            raise ValueError(f"member {name!r} is truncated or its header does not match its data")
        buffer = bytearray(size)
        if member.readinto(buffer) != size:
            raise ValueError(f"member {name!r} is truncated")
    return np.frombuffer(buffer, dtype=dtype).reshape(shape, order="F" if fortran else "C")


def read_npz(path: str | os.PathLike, *, max_elements: int = MAX_ELEMENTS, max_bytes: int = MAX_BYTES,
             what: str = "run file") -> dict[str, np.ndarray]:
    """Every array of an .npz, by name; NpzError (and no large allocation) for anything crafted."""
    where = repr(str(path))
    with open_regular(path, max_bytes=max_bytes, what=what) as f:
        try:
            with zipfile.ZipFile(f) as zf:
                infos = zf.infolist()
                unpacked, packed = sum(i.file_size for i in infos), os.fstat(f.fileno()).st_size
                if unpacked > max_bytes:
                    raise ValueError(f"its members claim more than {max_bytes:,} bytes unpacked")
                if unpacked > MAX_INFLATION * packed + INFLATION_SLACK:
                    raise ValueError(f"its members claim {unpacked:,} bytes unpacked from {packed:,}, more than "
                                     f"{MAX_INFLATION} times its size (echo-rnn writes run files uncompressed)")
                arrays: dict[str, np.ndarray] = {}
                for info in infos:
                    if not info.filename.endswith(".npy"):  # not an array: np.load skips it too
                        continue
                    if info.filename[:-4] in arrays:
                        raise ValueError(f"member {info.filename!r} is in the archive twice")
                    arrays[info.filename[:-4]] = _read_member(zf, info, max_elements)
                return arrays
        except zipfile.BadZipFile as e:
            detail = "not an .npz (zip) archive, or a truncated one" if "zip file" in str(e) else f"damaged ({e})"
            raise NpzError(f"{where} is not a readable {what}: {detail}") from None
        except (ValueError, EOFError, OSError, zlib.error, NotImplementedError, RecursionError) as e:
            detail = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise NpzError(f"{where} is not a readable {what}: {detail}") from None


def json_depth(text: str) -> int:
    """How deeply brackets nest, outside strings; computed without recursion."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def parse_config_json(text: str, *, what: str = "config", max_depth: int = MAX_DEPTH) -> dict[str, Any]:
    """A JSON object, or NpzError (a message to prefix with the file's name): not JSON, not an
    object (a list, a number), nested too deeply (checked before parsing, so 100,000 levels cost no
    recursion), or too long."""
    if len(text) > MAX_JSON_CHARS:
        raise NpzError(f"{what} is {len(text):,} characters long, more than a {what} can be")
    depth = json_depth(text)
    if depth > max_depth:
        raise NpzError(f"{what} is nested {depth:,} levels deep, more than the {max_depth} a {what} can be")
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise NpzError(f"{what} is not valid JSON ({str(e).splitlines()[0]})") from None
    if not isinstance(value, dict):
        raise NpzError(f"{what} is {_JSON_KINDS.get(type(value), 'a JSON value')}, not a JSON object")
    return value
