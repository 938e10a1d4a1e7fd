#!/usr/bin/env python3
"""A CamHD-shaped QuickTime movie at the disk cost of a short segment.

Writes OUT as: the segment's `ftyp`, one 64-bit `mdat` holding the segment's frames followed by a
sparse hole up to SIZE bytes, then a `moov` at the end describing FRAMES samples, sample i being
the segment's frame i mod K (every frame decodes; the ffmpeg CLI reads it like any movie). A real
CamHD file is ~13 GB with ~25,000 ProRes frames and its moov at the end; this is that shape in a
few hundred MB of disk (the hole takes none).

Usage: sparse_movie.py SEGMENT.mov OUT.mov [FRAMES [SIZE]]   (defaults 25200, 16e9)
Only the segment's first video track is kept; its edit list and other tracks are dropped.
"""

import os
import struct
import sys

CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl"}


def boxes(data, start, end):
    """(type, payload start, box end) of each box in data[start:end]."""
    while start + 8 <= end:
        size, kind = struct.unpack(">I4s", data[start : start + 8])
        header = 8
        if size == 1:
            size = struct.unpack(">Q", data[start + 8 : start + 16])[0]
            header = 16
        elif size == 0:
            size = end - start
        if size < header or start + size > end:
            raise SystemExit(f"bad box {kind!r} at {start}")
        yield kind, start + header, start + size
        start += size


def find(data, start, end, path):
    """The (payload start, end) of the first box along path, e.g. [b"trak", b"mdia"]."""
    for kind, body, stop in boxes(data, start, end):
        if kind == path[0]:
            return (body, stop) if len(path) == 1 else find(data, body, stop, path[1:])
    return None


def box(kind, *parts):
    payload = b"".join(parts)
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def full_box(kind, version_flags, *parts):
    return box(kind, struct.pack(">I", version_flags), *parts)


def read_segment(path):
    with open(path, "rb") as f:
        data = f.read()
    moov = find(data, 0, len(data), [b"moov"])
    ftyp = find(data, 0, len(data), [b"ftyp"])
    if moov is None or ftyp is None:
        raise SystemExit(f"{path}: no moov/ftyp")
    for kind, body, stop in boxes(data, *moov):
        if kind != b"trak":
            continue
        hdlr = find(data, body, stop, [b"mdia", b"hdlr"])
        if hdlr and data[hdlr[0] + 8 : hdlr[0] + 12] == b"vide":
            return data, ftyp, moov, (body, stop)
    raise SystemExit(f"{path}: no video track")


def sample_table(data, trak):
    stbl = find(data, trak[0], trak[1], [b"mdia", b"minf", b"stbl"])
    tables = {kind: (body, stop) for kind, body, stop in boxes(data, *stbl)}
    body = tables[b"stsz"][0]
    fixed, count = struct.unpack(">II", data[body + 4 : body + 12])
    sizes = (
        [fixed] * count
        if fixed
        else list(struct.unpack(f">{count}I", data[body + 12 : body + 12 + 4 * count]))
    )
    if b"co64" in tables:
        body = tables[b"co64"][0]
        n = struct.unpack(">I", data[body + 4 : body + 8])[0]
        chunks = struct.unpack(f">{n}Q", data[body + 8 : body + 8 + 8 * n])
    else:
        body = tables[b"stco"][0]
        n = struct.unpack(">I", data[body + 4 : body + 8])[0]
        chunks = struct.unpack(f">{n}I", data[body + 8 : body + 8 + 4 * n])
    body = tables[b"stsc"][0]
    n = struct.unpack(">I", data[body + 4 : body + 8])[0]
    runs = [
        struct.unpack(">III", data[body + 8 + 12 * i : body + 20 + 12 * i])
        for i in range(n)
    ]
    offsets = []
    for i, (first, per_chunk, _) in enumerate(runs):
        last = runs[i + 1][0] - 1 if i + 1 < len(runs) else len(chunks)
        for chunk in range(first - 1, last):
            at = chunks[chunk]
            for _ in range(per_chunk):
                if len(offsets) == len(sizes):
                    break
                offsets.append(at)
                at += sizes[len(offsets) - 1]
    body = tables[b"stts"][0]
    n = struct.unpack(">I", data[body + 4 : body + 8])[0]
    deltas = {
        struct.unpack(">II", data[body + 8 + 8 * i : body + 16 + 8 * i])[1]
        for i in range(n)
    }
    if len(deltas) != 1:
        raise SystemExit("the segment must have a constant frame duration")
    stsd = data[tables[b"stsd"][0] - 8 : tables[b"stsd"][1]]
    return sizes, offsets, deltas.pop(), stsd


def patch_duration(raw, offset, duration):
    """raw (a version-0 full box) with the 32-bit duration at payload offset replaced."""
    if raw[8] != 0:
        raise SystemExit("only version-0 mvhd/tkhd/mdhd are handled")
    at = 8 + offset
    return raw[:at] + struct.pack(">I", duration) + raw[at + 4 :]


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    segment, out = sys.argv[1], sys.argv[2]
    frames = int(sys.argv[3]) if len(sys.argv) > 3 else 25_200
    size = int(float(sys.argv[4])) if len(sys.argv) > 4 else 16_000_000_000
    data, ftyp, moov, trak = read_segment(segment)
    sizes, offsets, delta, stsd = sample_table(data, trak)

    ftyp_box = data[ftyp[0] - 8 : ftyp[1]]
    mdat_start = len(ftyp_box)
    payload_start = mdat_start + 16
    new_offsets, at = [], payload_start
    for size_, offset in zip(sizes, offsets):
        new_offsets.append(at)
        at += size_
    frames_end = at
    mdat_end = max(size - 2_000_000, frames_end)

    def raw(path, start=None, end=None):
        found = find(
            data,
            start if start is not None else moov[0],
            end if end is not None else moov[1],
            path,
        )
        return data[found[0] - 8 : found[1]]

    mvhd = raw([b"mvhd"])
    movie_scale = struct.unpack(">I", mvhd[20:24])[0]
    mdhd = raw([b"mdia", b"mdhd"], *trak)
    media_scale = struct.unpack(">I", mdhd[20:24])[0]
    media_duration = frames * delta
    movie_duration = media_duration * movie_scale // media_scale
    k = len(sizes)
    picks = [i % k for i in range(frames)]
    stbl = box(
        b"stbl",
        stsd,
        full_box(b"stts", 0, struct.pack(">III", 1, frames, delta)),
        full_box(b"stsc", 0, struct.pack(">IIII", 1, 1, 1, 1)),
        full_box(
            b"stsz",
            0,
            struct.pack(">II", 0, frames),
            struct.pack(f">{frames}I", *(sizes[i] for i in picks)),
        ),
        full_box(
            b"co64",
            0,
            struct.pack(">I", frames),
            struct.pack(f">{frames}Q", *(new_offsets[i] for i in picks)),
        ),
    )
    minf = box(
        b"minf",
        raw([b"mdia", b"minf", b"vmhd"], *trak),
        raw([b"mdia", b"minf", b"dinf"], *trak),
        stbl,
    )
    mdia = box(
        b"mdia",
        patch_duration(mdhd, 16, media_duration),
        raw([b"mdia", b"hdlr"], *trak),
        minf,
    )
    tkhd = patch_duration(raw([b"tkhd"], *trak), 20, movie_duration)
    moov_box = box(
        b"moov", patch_duration(mvhd, 16, movie_duration), box(b"trak", tkhd, mdia)
    )

    with open(out + ".tmp", "wb") as f:
        f.write(ftyp_box)
        f.write(struct.pack(">I4sQ", 1, b"mdat", mdat_end - mdat_start))
        for size_, offset in zip(sizes, offsets):
            f.write(data[offset : offset + size_])
        f.truncate(mdat_end)
        f.seek(mdat_end)
        f.write(moov_box)
    os.replace(out + ".tmp", out)
    print(
        f"{out}: {frames} frames, {mdat_end + len(moov_box)} bytes, moov {len(moov_box)} bytes "
        f"at {mdat_end}"
    )


if __name__ == "__main__":
    main()
