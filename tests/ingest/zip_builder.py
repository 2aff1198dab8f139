"""Writes zip archives byte by byte, so tests can use methods Python's zipfile cannot write (Zstandard),
unknown methods, and sizes that lie (zip bombs)."""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import zstandard


@dataclass
class RawMember:
    name: str
    method: int
    data: bytes  # already compressed with `method`
    size: int  # the uncompressed size the headers declare
    crc: int


def zstd_member(name: str, payload: bytes) -> RawMember:
    return RawMember(name, 93, zstandard.ZstdCompressor().compress(payload), len(payload), zlib.crc32(payload))


def zstd_stream_member(name: str, prefix: bytes, filler: bytes, repeats: int, suffix: bytes) -> RawMember:
    """A member of prefix + filler * repeats + suffix, compressed chunk by chunk (never held whole in memory)."""
    compressor = zstandard.ZstdCompressor(level=3).compressobj()
    crc = zlib.crc32(prefix)
    out = [compressor.compress(prefix)]
    for _ in range(repeats):
        out.append(compressor.compress(filler))
        crc = zlib.crc32(filler, crc)
    out.append(compressor.compress(suffix))
    crc = zlib.crc32(suffix, crc)
    out.append(compressor.flush())
    return RawMember(name, 93, b"".join(out), len(prefix) + len(filler) * repeats + len(suffix), crc)


def write_zip(path: Path, members: list[RawMember]) -> Path:
    local = bytearray()
    central = bytearray()
    for member in members:
        name = member.name.encode()
        offset = len(local)
        local += struct.pack(
            "<4s5H3L2H",
            b"PK\x03\x04",
            63,
            0,
            member.method,
            0,
            0,
            member.crc,
            len(member.data),
            member.size,
            len(name),
            0,
        )
        local += name + member.data
        central += struct.pack(
            "<4s6H3L5H2L",
            b"PK\x01\x02",
            63,
            63,
            0,
            member.method,
            0,
            0,
            member.crc,
            len(member.data),
            member.size,
            len(name),
            0,
            0,
            0,
            0,
            0,
            offset,
        )
        central += name
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(members), len(members), len(central), len(local), 0)
    path.write_bytes(bytes(local + central + end))
    return path
