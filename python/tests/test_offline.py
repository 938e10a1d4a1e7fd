"""What needs no server: PNG decoding, selections, shapes, retry waits, pickling."""

from __future__ import annotations

import datetime
import email.utils
import pickle
import subprocess
from pathlib import Path

import numpy as np
import pytest

import lazycache
from lazycache.decode import array_from_png
from lazycache.options import (
    FrameOptions,
    encode_selection,
    format_time,
    output_shape,
    parse_selection,
)
from lazycache.retry import RetryPolicy, retry_after

from .conftest import FIXTURES


@pytest.mark.parametrize("pred", ["0", "1", "2", "3", "4", "5"])
def test_16_bit_rgb_png_decodes_exactly_with_every_filter(tmp_path: Path, pred: str) -> None:
    # ffmpeg's -pred picks the PNG row filter (5: mixed, per row); Pillow would give 8 bits.
    movie = FIXTURES / "tiny_prores.mov"
    png = tmp_path / "f.png"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-i", str(movie), "-frames:v", "1"]
        + ["-pix_fmt", "rgb48be", "-pred", pred, "-y", str(png)],
        check=True,
    )
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-i", str(movie), "-frames:v", "1"]
        + ["-f", "rawvideo", "-pix_fmt", "rgb48le", "-"],
        check=True,
        capture_output=True,
    ).stdout
    decoded = array_from_png(png.read_bytes())
    assert decoded.dtype == np.uint16
    expected = np.frombuffer(raw, "<u2").reshape(decoded.shape)
    np.testing.assert_array_equal(decoded, expected)
    assert decoded.max() > 255  # really 16-bit, not 8 bits widened


def test_selections_round_trip() -> None:
    assert encode_selection([5]) == "5"
    assert encode_selection([1, 2, 3]) == "1-3"
    assert encode_selection([1, 11, 21]) == "1-21:10"
    assert encode_selection([3, 1, 2]) == "3,1,2"
    assert parse_selection("1-21:10") == [1, 11, 21]
    assert parse_selection("7") == [7]
    assert parse_selection("4,2") == [4, 2]
    assert parse_selection(range(1, 4)) == [1, 2, 3]
    for frames in ([1, 11, 21], [2, 3, 4], [9, 4, 6]):
        assert parse_selection(encode_selection(frames)) == frames


def test_output_shape_follows_the_servers_plan() -> None:
    meta = lazycache.Metadata.from_json(
        {"URL": "/m.mov", "NumFrames": 10, "Width": 1920, "Height": 1080}
    )
    assert output_shape(meta, FrameOptions()) == (1080, 1920, 3)
    assert output_shape(meta, FrameOptions(width=640)) == (360, 640, 3)
    assert output_shape(meta, FrameOptions(height=101)) == (101, 180, 3)  # 179.55… rounds up
    assert output_shape(meta, FrameOptions(width=300, height=300, fit="contain")) == (300, 300, 3)
    assert output_shape(meta, FrameOptions(crop=(10, 20, 100, 50), channels="gray")) == (50, 100)
    assert FrameOptions(depth=16).dtype == np.uint16
    with pytest.raises(ValueError, match="not inside"):
        output_shape(meta, FrameOptions(crop="1900,0,100,100"))


def test_times_and_options_as_the_routes_take_them() -> None:
    assert format_time(2.5) == "2.5"
    assert format_time(3) == "3"
    assert format_time(datetime.timedelta(minutes=1, seconds=2)) == "62"
    assert format_time("00:01:02.500") == "00:01:02.500"
    params = FrameOptions(width=64, crop=(1, 2, 3, 4), depth=16, channels="gray").params()
    assert params == {"width": "64", "crop": "1,2,3,4", "depth": "16", "channels": "gray"}
    with pytest.raises(ValueError, match="depth"):
        FrameOptions(depth=12)


def test_retry_after_is_honoured_and_bounded() -> None:
    policy = RetryPolicy(retries=3, max_wait=5.0)
    assert policy.delay(0, {"Retry-After": "2"}) == 2.0
    assert policy.delay(0, {"retry-after": "600"}) == 5.0
    later = email.utils.format_datetime(
        datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=3), usegmt=True
    )
    assert 0.0 < (retry_after({"Retry-After": later}) or 0.0) <= 3.0
    assert retry_after({}) is None
    assert 0.0 < policy.delay(2) <= 5.0  # backoff without the header


def test_clients_pickle_to_their_settings() -> None:
    client = lazycache.Client("http://127.0.0.1:9/v1/x", api_key="k", retries=2)
    again = pickle.loads(pickle.dumps(client))
    assert (again.url, again.api_key, again.retry.retries) == (client.url, "k", 2)
    assert pickle.loads(pickle.dumps(client)) is again  # one per process and settings
    aio = pickle.loads(pickle.dumps(lazycache.AsyncClient("http://127.0.0.1:9/v1/x")))
    assert isinstance(aio, lazycache.AsyncClient)


def test_a_path_may_not_climb_out_of_its_mirror() -> None:
    with pytest.raises(ValueError, match=r"\.\."):
        lazycache.Client("http://127.0.0.1:9/v1/x").metadata("a/../../etc/passwd")
