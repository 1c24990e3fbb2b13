"""WAV decoding: PCM 8/16/24/32-bit integer and 32-bit float, any channels
(mixed down to mono), chunks in any order. Malformed files raise
:func:`gatehouse_sdk.invalid_input` errors, never crash the plugin."""

import struct
from array import array
from typing import List, Tuple

from . import invalid_input


def decode(data: bytes) -> Tuple[int, List[float]]:
    """``(sample_rate, samples)`` with samples as floats in [-1, 1]."""
    if len(data) < 12 or data[0:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise invalid_input("not a RIFF/WAVE file")
    fmt = None
    pcm = None
    pos = 12
    while pos + 8 <= len(data):
        cid = data[pos : pos + 4]
        (size,) = struct.unpack_from("<I", data, pos + 4)
        body = data[pos + 8 : pos + 8 + size]
        if cid == b"fmt ":
            if len(body) < 16:
                raise invalid_input("WAV fmt chunk too short")
            fmt = struct.unpack_from("<HHIIHH", body, 0)
        elif cid == b"data":
            pcm = body
        pos += 8 + size + (size & 1)
    if fmt is None or pcm is None:
        raise invalid_input("WAV without fmt or data chunk")
    tag, channels, rate, _, _, bits = fmt
    if channels == 0 or rate == 0:
        raise invalid_input("WAV with no channels or no sample rate")
    if tag == 0xFFFE:  # WAVE_FORMAT_EXTENSIBLE: the sub-format decides
        tag = 3 if bits == 32 and _float_subformat(data) else 1
    width = bits // 8
    frames = len(pcm) // (width * channels) if width else 0
    pcm = pcm[: frames * width * channels]
    if tag == 1 and bits == 16:
        raw = array("h")
        raw.frombytes(pcm)
        scale = 1 / 32768
    elif tag == 1 and bits == 32:
        raw = array("i")
        raw.frombytes(pcm)
        scale = 1 / 2147483648
    elif tag == 3 and bits == 32:
        raw = array("f")
        raw.frombytes(pcm)
        scale = 1.0
    elif tag == 1 and bits == 8:
        raw = [b - 128 for b in pcm]
        scale = 1 / 128
    elif tag == 1 and bits == 24:
        raw = [
            int.from_bytes(pcm[i : i + 3], "little", signed=True) for i in range(0, len(pcm), 3)
        ]
        scale = 1 / 8388608
    else:
        raise invalid_input(f"WAV format {tag} with {bits} bits is not supported")
    if channels == 1:
        return rate, [s * scale for s in raw]
    mono = []
    for f in range(frames):
        base = f * channels
        mono.append(sum(raw[base : base + channels]) * scale / channels)
    return rate, mono


def _float_subformat(data: bytes) -> bool:
    i = data.find(b"fmt ")
    # The sub-format GUID starts 24 bytes into an extensible fmt body.
    return i >= 0 and len(data) >= i + 8 + 26 and data[i + 8 + 24] == 3
