"""Bytes of a frame answer into NumPy arrays: ``.npy`` as sent, PNG (8- or 16-bit), other images.

``.npy`` answers carry their own shape and dtype (uint8 or little-endian uint16). PNG is what a
server without ``--allow-raw-output`` gives instead; Pillow reads 8-bit PNG and 16-bit gray PNG,
but turns 16-bit RGB PNG into 8 bits, so that one case is decoded here (zlib and the five PNG
row filters, vectorised with NumPy where the filter allows) to keep every sample exact.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image

__all__ = ["array_from_image", "array_from_npy", "array_from_png", "png_rgb16"]

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def array_from_npy(content: bytes) -> np.ndarray:
    """A ``.npy`` body as an array in native byte order."""
    array: np.ndarray = np.load(io.BytesIO(content), allow_pickle=False)
    if not array.dtype.isnative:
        array = array.astype(array.dtype.newbyteorder("="))
    return array


def array_from_png(content: bytes) -> np.ndarray:
    """A PNG body as an array: ``(h, w, 3)`` or ``(h, w)``, uint8 or uint16, samples exact."""
    header = _png_header(content)
    if header is not None and header[2] == 16 and header[3] == 2:
        return png_rgb16(content)
    return array_from_image(content)


def array_from_image(content: bytes) -> np.ndarray:
    """Any image Pillow reads (PNG, JPEG, BMP, WebP) as an array; 16-bit gray stays uint16."""
    with Image.open(io.BytesIO(content)) as image:
        if image.mode in ("I;16", "I;16L", "I;16B", "I;16N"):
            return np.asarray(image).astype(np.uint16)
        if image.mode in ("RGB", "L"):
            return np.asarray(image).copy()
        return np.asarray(image.convert("RGB")).copy()


def _png_header(content: bytes) -> tuple[int, int, int, int, int] | None:
    """(width, height, bit depth, colour type, interlace) of a PNG, or None if not a PNG."""
    if not content.startswith(_PNG_SIGNATURE) or content[12:16] != b"IHDR":
        return None
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", content[16:29])
    return width, height, depth, colour, interlace


def png_rgb16(content: bytes) -> np.ndarray:
    """A 16-bit RGB PNG (non-interlaced) as a ``(h, w, 3)`` uint16 array."""
    header = _png_header(content)
    if header is None or header[2] != 16 or header[3] != 2:
        raise ValueError("not a 16-bit RGB PNG")
    width, height, _, _, interlace = header
    if interlace:
        raise ValueError("interlaced 16-bit RGB PNG is not supported")
    data = bytearray()
    pos = 8
    while pos + 8 <= len(content):
        (length,) = struct.unpack(">I", content[pos : pos + 4])
        chunk_type = content[pos + 4 : pos + 8]
        if chunk_type == b"IDAT":
            data += content[pos + 8 : pos + 8 + length]
        elif chunk_type == b"IEND":
            break
        pos += 12 + length
    bpp = 6
    stride = width * bpp
    raw = np.frombuffer(zlib.decompress(bytes(data)), dtype=np.uint8)
    if raw.size != height * (stride + 1):
        raise ValueError("PNG image data has the wrong length")
    rows = raw.reshape(height, stride + 1)
    filters = rows[:, 0]
    out = np.empty((height, stride), dtype=np.uint8)
    previous = np.zeros(stride, dtype=np.uint8)
    y = 0
    while y < height:
        kind = int(filters[y])
        if kind == 2:  # Up: a run of Up rows is a running sum down the columns
            end = y
            while end < height and filters[end] == 2:
                end += 1
            block = rows[y:end, 1:].copy()
            block[0] += previous
            out[y:end] = np.cumsum(block, axis=0, dtype=np.uint8)
            previous = out[end - 1]
            y = end
            continue
        line = rows[y, 1:]
        if kind == 0:
            current = line.copy()
        elif kind == 1:  # Sub: a running sum along each sample lane
            current = np.cumsum(line.reshape(width, bpp), axis=0, dtype=np.uint8).reshape(-1)
        elif kind in (3, 4):
            current = _unfilter_sequential(kind, line, previous, bpp)
        else:
            raise ValueError(f"bad PNG filter type {kind}")
        out[y] = current
        previous = current
        y += 1
    return out.view(">u2").reshape(height, width, 3).astype(np.uint16)


def _unfilter_sequential(kind: int, line: np.ndarray, previous: np.ndarray, bpp: int) -> np.ndarray:
    """Average (3) and Paeth (4) rows, which depend on the row's own reconstructed bytes."""
    cur = line.astype(np.int32)
    up = previous.astype(np.int32)
    out = np.zeros_like(cur)
    zero = np.zeros(bpp, dtype=np.int32)
    for x in range(0, cur.size, bpp):
        left = out[x - bpp : x] if x else zero
        above = up[x : x + bpp]
        if kind == 3:
            predictor = (left + above) // 2
        else:
            upper_left = up[x - bpp : x] if x else zero
            p = left + above - upper_left
            pa, pb, pc = np.abs(p - left), np.abs(p - above), np.abs(p - upper_left)
            predictor = np.where(
                (pa <= pb) & (pa <= pc), left, np.where(pb <= pc, above, upper_left)
            )
        out[x : x + bpp] = (cur[x : x + bpp] + predictor) & 0xFF
    return out.astype(np.uint8)
