"""lazycache.dask on a real two-worker LocalCluster: lazy shapes, means equal to the oracle's."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import dask.array as da
import distributed
import numpy as np
import pytest

import lazycache
import lazycache.dask as lcd

from .conftest import H264, PRORES, SERIES, SERIES_FRAMES

Oracle = Callable[..., np.ndarray]


@pytest.fixture(scope="module")
def cluster() -> Iterator[distributed.Client]:
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address=None,
            processes=True,
        ) as local,
        distributed.Client(local) as client,
    ):
        yield client


def test_shape_and_dtype_come_from_metadata_alone(proxy_raw_client: lazycache.Client) -> None:
    array = lcd.movie(proxy_raw_client, PRORES, depth=16, channels="gray", crop=(0, 0, 640, 360))
    assert array.shape == (75, 360, 640) and array.dtype == np.uint16
    assert array.chunks[0] == (75,)  # 75 frames of 450 KB: one chunk
    lapse = lcd.across(proxy_raw_client, "series", 3)
    assert lapse.shape == (2, 180, 320, 3) and lapse.dtype == np.uint8
    assert not any("/frame" in p for p in proxy_raw_client.seen)  # type: ignore[attr-defined]


@pytest.fixture
def proxy_raw_client(proxy, raw_url: str) -> lazycache.Client:
    """A client through the recording proxy (to see which requests are made)."""
    client = lazycache.Client(f"{proxy.url}/v1/lib", progress=False)
    client.seen = proxy.seen  # type: ignore[attr-defined]
    return client


def test_mean_image_of_20_frames_of_two_movies_on_the_cluster(
    cluster: distributed.Client, raw_url: str, oracle: Oracle
) -> None:
    client = lazycache.Client(raw_url, progress=False)
    frames = list(range(11, 31))  # 20 frames of each movie, across GOPs of 12
    stack = lcd.across(client, list(SERIES), frames)  # (2, 20, 180, 320, 3), computed remotely
    assert stack.shape == (2, 20, 180, 320, 3) and stack.dtype == np.uint8
    mean = stack.mean(axis=(0, 1), dtype=np.float64).compute()
    expected = np.concatenate([oracle(m, frames, "rgb24") for m in SERIES]).mean(
        axis=0, dtype=np.float64
    )
    np.testing.assert_array_equal(mean, expected)
    # The frames were fetched by the workers, each with its own unpickled client.
    clients = cluster.run(lambda: len(lazycache.base._SHARED))
    assert len(clients) == 2 and any(n > 0 for n in clients.values()), clients


def test_every_nth_frame_of_each_movie_on_the_cluster(
    cluster: distributed.Client, raw_url: str, oracle: Oracle
) -> None:
    per_movie = lcd.every_nth(raw_url, "series", 4, frames_per_chunk=3, depth=16, channels="gray")
    assert list(per_movie) == list(SERIES)
    wanted = list(range(1, SERIES_FRAMES + 1, 4))
    for array in per_movie.values():
        assert array.shape == (len(wanted), 180, 320) and array.dtype == np.uint16
        assert array.chunks[0] == (3, 3, 3, 1)
    together = da.concatenate(list(per_movie.values())).compute()
    expected = np.concatenate([oracle(m, wanted, "gray16le") for m in SERIES])
    np.testing.assert_array_equal(together, expected)


def test_a_time_lapse_of_one_frame_across_movies(
    cluster: distributed.Client, raw_url: str, oracle: Oracle
) -> None:
    lapse = lcd.across(raw_url, list(SERIES) + [SERIES[0]], 17, movies_per_chunk=2)
    assert lapse.chunks[0] == (2, 1)
    got = lapse.compute()
    expected = np.stack([oracle(m, [17], "rgb24")[0] for m in (*SERIES, SERIES[0])])
    np.testing.assert_array_equal(got, expected)
    with pytest.raises(ValueError, match="different sizes"):
        lcd.across(raw_url, [H264, SERIES[0]], 1)
