"""The asyncio client: the same answers as the synchronous one, many calls at once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import lazycache

from .conftest import API_KEY, H264, MIRROR, PRORES, SERIES, Proxy

Oracle = Callable[..., np.ndarray]


def test_async_frames_equal_the_oracle(raw_url: str, oracle: Oracle) -> None:
    async def main() -> tuple[list[np.ndarray], np.ndarray, lazycache.Metadata]:
        async with lazycache.AsyncClient(raw_url, progress=False) as client:
            meta = await client.metadata(H264)
            singles = await asyncio.gather(*(client.frame(H264, n) for n in (1, 62, 63, 150)))
            run = await client.frames(H264, range(60, 66))
            return list(singles), run, meta

    singles, run, meta = asyncio.run(main())
    assert meta.num_frames == 150
    np.testing.assert_array_equal(np.stack(singles), oracle(H264, [1, 62, 63, 150], "rgb24"))
    np.testing.assert_array_equal(run, oracle(H264, list(range(60, 66)), "rgb24"))


def test_async_png_fallback_and_16_bits(png_url: str, oracle: Oracle) -> None:
    async def main() -> tuple[np.ndarray, np.ndarray]:
        async with lazycache.AsyncClient(png_url, progress=False) as client:
            luma = await client.frame(PRORES, 3, depth=16, channels="gray")
            many = await client.frames(PRORES, [2, 3], depth=16)
            return luma, many

    luma, many = asyncio.run(main())
    np.testing.assert_array_equal(luma, oracle(PRORES, [3], "gray16le")[0])
    np.testing.assert_array_equal(many, oracle(PRORES, [2, 3], "rgb48le"))


def test_async_listing_across_sprite_clip(raw_url: str, tmp_path: Path) -> None:
    async def main() -> tuple[list[str], np.ndarray, str, Path]:
        async with lazycache.AsyncClient(raw_url, progress=False) as client:
            movies = await client.movies("series")
            lapse = await client.across(movies, 1)
            vtt = await client.sprite_vtt(H264, count=4)
            clip = await client.clip(H264, 5, 9, tmp_path / "c.mp4")
            return movies, lapse, vtt, clip

    movies, lapse, vtt, clip = asyncio.run(main())
    assert movies == list(SERIES)
    assert lapse.shape == (2, 180, 320, 3)
    assert vtt.startswith("WEBVTT")
    assert clip.stat().st_size > 0


def test_async_errors_retries_and_keys(proxy: Proxy, key_url: str) -> None:
    proxy.fail_next(503, {"Retry-After": "1"})

    async def main() -> float:
        async with lazycache.AsyncClient(f"{proxy.url}/v1/{MIRROR}") as client:
            started = time.monotonic()
            assert (await client.frame(H264, 7)).shape == (360, 640, 3)
            waited = time.monotonic() - started
            with pytest.raises(lazycache.BadRequest, match="frames count from 1"):
                await client.frame(H264, 0)
        async with lazycache.AsyncClient(key_url) as anonymous:
            with pytest.raises(lazycache.Unauthorized):
                await anonymous.metadata(H264)
        async with lazycache.AsyncClient(key_url, api_key=API_KEY) as keyed:
            assert (await keyed.metadata(H264)).num_frames == 150
        return waited

    waited = asyncio.run(main())
    assert 1.0 <= waited < 5.0  # Retry-After honoured
    assert len([p for p in proxy.seen if "/frame/7." in p]) == 2
