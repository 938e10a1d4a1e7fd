"""The synchronous client against a real server: exact frames, many frames, the 501 fallback,
listing, metadata, time, sprites, clips and progress bars."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import lazycache

from .conftest import H264, MIRROR, PRORES, SERIES, SERIES_FRAMES, Proxy

Oracle = Callable[..., np.ndarray]


@pytest.fixture(scope="module")
def raw(raw_url: str) -> lazycache.Client:
    with lazycache.Client(raw_url, progress=False) as client:
        yield client


@pytest.fixture(scope="module")
def png(png_url: str) -> lazycache.Client:
    with lazycache.Client(png_url, progress=False) as client:
        yield client


def test_listing_mirrors_and_movies(raw: lazycache.Client) -> None:
    root = raw.list()
    assert root.path == "/"
    assert {PRORES, H264} <= set(root.files)
    assert "series" in root.directories
    assert raw.list("series").files == sorted(
        ["a_20160724T000000Z.mp4", "b_20160724T030000Z.mp4", "notes.txt"]
    )
    assert raw.movies("series") == list(SERIES)  # notes.txt is not a movie
    prefixes = [m["APIPath"]["V1"] for m in raw.mirrors().values()]
    assert any(p.rstrip("/").endswith(f"/v1/{MIRROR}") for p in prefixes), prefixes


def test_metadata(raw: lazycache.Client) -> None:
    meta = raw.metadata(PRORES)
    assert (meta.width, meta.height, meta.codec, meta.bit_depth) == (1920, 1080, "prores", 10)
    assert meta.num_frames == meta["NumFrames"] == 75
    h264 = raw.metadata(H264)
    assert (h264.num_frames, h264.width, h264.height) == (150, 640, 360)
    stamped = raw.metadata(SERIES[1])
    assert stamped.start_time is not None and stamped.start_time.hour == 3


@pytest.mark.parametrize("number", [1, 2, 61, 150])
def test_long_gop_frames_equal_the_oracle(
    raw: lazycache.Client, oracle: Oracle, number: int
) -> None:
    frame = raw.frame(H264, number)
    assert frame.dtype == np.uint8 and frame.shape == (360, 640, 3)
    np.testing.assert_array_equal(frame, oracle(H264, [number], "rgb24")[0])


def test_prores_at_16_bits_equals_the_oracle(raw: lazycache.Client, oracle: Oracle) -> None:
    frame = raw.frame(PRORES, 40, depth=16)
    assert frame.dtype == np.uint16 and frame.shape == (1080, 1920, 3)
    np.testing.assert_array_equal(frame, oracle(PRORES, [40], "rgb48le")[0])
    luma = raw.frame(PRORES, 40, depth=16, channels="gray")
    assert luma.dtype == np.uint16 and luma.shape == (1080, 1920)
    np.testing.assert_array_equal(luma, oracle(PRORES, [40], "gray16le")[0])
    gray8 = raw.frame(PRORES, 40, channels="gray")
    np.testing.assert_array_equal(gray8, oracle(PRORES, [40], "gray")[0])


def test_a_crop_is_the_oracles_pixels(raw: lazycache.Client, oracle: Oracle) -> None:
    cut = raw.frame(PRORES, 7, depth=16, channels="gray", crop=(100, 50, 320, 200))
    np.testing.assert_array_equal(cut, oracle(PRORES, [7], "gray16le")[0][50:250, 100:420])


def test_without_raw_output_png_gives_the_same_arrays(
    png: lazycache.Client, raw: lazycache.Client, oracle: Oracle
) -> None:
    with pytest.raises(lazycache.RawOutputDisabled) as refused:
        png.frame(H264, 1, format="npy", output="bytes")
    assert refused.value.status == 501
    np.testing.assert_array_equal(png.frame(H264, 61), oracle(H264, [61], "rgb24")[0])
    deep = png.frame(PRORES, 12, depth=16)  # 16-bit RGB PNG, decoded exactly
    assert deep.dtype == np.uint16
    np.testing.assert_array_equal(deep, oracle(PRORES, [12], "rgb48le")[0])
    luma = png.frame(PRORES, 12, depth=16, channels="gray")
    np.testing.assert_array_equal(luma, oracle(PRORES, [12], "gray16le")[0])
    wanted = [3, 30, 31, 32, 90]
    np.testing.assert_array_equal(png.frames(H264, wanted), raw.frames(H264, wanted))


def test_frames_route_equals_single_frames_and_the_oracle(
    raw: lazycache.Client, oracle: Oracle
) -> None:
    run = raw.frames(H264, range(55, 70))
    assert run.shape == (15, 360, 640, 3)
    np.testing.assert_array_equal(run, oracle(H264, list(range(55, 70)), "rgb24"))
    picked = raw.frames(H264, "1-150:37", chunk_frames=2)  # 1, 38, 75, 112, 149 in 3 requests
    singles = np.stack([raw.frame(H264, n) for n in (1, 38, 75, 112, 149)])
    np.testing.assert_array_equal(picked, singles)
    again = raw.frames(H264, [75, 1, 75])  # order kept, repeats allowed
    np.testing.assert_array_equal(again, singles[[2, 0, 2]])
    deep = raw.frames(PRORES, [1, 75], depth=16, channels="gray")
    assert deep.shape == (2, 1080, 1920) and deep.dtype == np.uint16
    np.testing.assert_array_equal(deep, oracle(PRORES, [1, 75], "gray16le"))


def test_a_server_without_the_frames_route_gets_single_frames(
    proxy: Proxy, raw: lazycache.Client
) -> None:
    proxy.no_frames_route = True  # as go-lazycache: no frames/<selection>
    client = lazycache.Client(f"{proxy.url}/v1/{MIRROR}", progress=False)
    got = client.frames(H264, range(10, 16))
    np.testing.assert_array_equal(got, raw.frames(H264, range(10, 16)))
    assert sum("/frames/" in p for p in proxy.seen) == 1  # asked once, then learnt
    assert sum("/frame/" in p for p in proxy.seen) == 6
    client.frames(H264, [1, 2])
    assert sum("/frames/" in p for p in proxy.seen) == 1


def test_time_and_frame_info(raw: lazycache.Client) -> None:
    at, info = raw.frame(H264, time=2.0, with_info=True)  # 25 fps: frame 51
    assert info.frame == 51 and info.time == pytest.approx(2.0)
    np.testing.assert_array_equal(at, raw.frame(H264, 51))
    stamped = raw.frame_info(SERIES[0], 26)
    assert stamped.timestamp is not None and stamped.timestamp.second == 1
    keyframe = raw.frame_info(H264, 70, seek="keyframe")
    assert keyframe.frame == 61


def test_images_bytes_and_sizes(raw: lazycache.Client) -> None:
    image = raw.frame(H264, 5, output="image", format="jpg", width=320, quality=90)
    assert isinstance(image, Image.Image) and image.size == (320, 180) and image.format == "JPEG"
    data = raw.frame(H264, 5, output="bytes", format="webp", width=100, height=100, fit="contain")
    assert data[:4] == b"RIFF"
    small = raw.frame(H264, 5, width=100, height=40, fit="cover")
    assert small.shape == (40, 100, 3)


def test_sprite_and_its_map(raw: lazycache.Client) -> None:
    sheet = raw.sprite(H264, count=6, cols=3, width=100)
    assert sheet.size == (300, 2 * 56)
    vtt = raw.sprite_vtt(H264, count=6, cols=3, width=100)
    assert vtt.startswith("WEBVTT") and vtt.count("#xywh=") == 6


def test_clip_streams_to_a_file(raw: lazycache.Client, oracle: Oracle, tmp_path: Path) -> None:
    dest = raw.clip(PRORES, 10, 20, tmp_path / "clip.mov")
    assert dest == tmp_path / "clip.mov" and not (tmp_path / "clip.mov.part").exists()
    decoded = subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-i", str(dest), "-map", "0:v:0"]
        + ["-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        check=True,
        capture_output=True,
    ).stdout
    frames = np.frombuffer(decoded, np.uint8).reshape(-1, 1080, 1920, 3)
    assert len(frames) == 11
    np.testing.assert_array_equal(frames[0], oracle(PRORES, [10], "rgb24")[0])


def test_the_same_frame_across_movies(raw: lazycache.Client, oracle: Oracle) -> None:
    lapse = raw.across(raw.movies("series"), SERIES_FRAMES)
    assert lapse.shape == (2, 180, 320, 3)
    for i, movie in enumerate(SERIES):
        np.testing.assert_array_equal(lapse[i], oracle(movie, [SERIES_FRAMES], "rgb24")[0])
    with pytest.raises(lazycache.LazycacheError, match="width= and height="):
        raw.across([H264, PRORES], 1)


def test_long_batches_show_a_progress_bar(png_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    with lazycache.Client(png_url) as client:
        client.frames(SERIES[0], range(1, 25))
    assert "frame" in capsys.readouterr().err
    with lazycache.Client(png_url, progress=False) as client:
        client.frames(SERIES[0], range(1, 25))
    assert capsys.readouterr().err == ""
