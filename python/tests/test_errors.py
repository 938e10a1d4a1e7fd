"""Errors carry the server's status and words; 429/502/503/504 are retried per Retry-After;
API keys."""

from __future__ import annotations

import numpy as np
import pytest

import lazycache
import lazycache.client

from .conftest import API_KEY, H264, MIRROR, NOT_A_MOVIE, Proxy


def test_frame_zero_is_a_bad_request_in_the_servers_words(raw_url: str) -> None:
    with lazycache.Client(raw_url) as client, pytest.raises(lazycache.BadRequest) as error:
        client.frame(H264, 0)
    assert error.value.status == 400
    assert "frames count from 1" in error.value.message
    assert error.value.path is not None and error.value.path.endswith(f"{H264}/frame/0.npy")
    assert "frames count from 1" in str(error.value)


def test_missing_files_and_non_movies(raw_url: str) -> None:
    with lazycache.Client(raw_url) as client:
        with pytest.raises(lazycache.NotFound) as missing:
            client.metadata("no/such/movie.mov")
        assert missing.value.status == 404 and missing.value.message
        with pytest.raises(lazycache.NotFound):
            client.frame("no_such_movie.mp4", 1)
        with pytest.raises(lazycache.UnsupportedMedia) as not_video:
            client.metadata(NOT_A_MOVIE)
        assert not_video.value.status == 415
        with pytest.raises(lazycache.BadRequest, match="151"):
            client.frames(H264, [149, 150, 151])


def test_api_keys(key_url: str) -> None:
    with lazycache.Client(key_url) as anonymous, pytest.raises(lazycache.Unauthorized) as refused:
        anonymous.metadata(H264)
    assert refused.value.status == 401
    with lazycache.Client(key_url, api_key="wrong") as wrong, pytest.raises(lazycache.Unauthorized):
        wrong.frame(H264, 1)
    with lazycache.Client(key_url, api_key=API_KEY) as keyed:
        assert keyed.metadata(H264).num_frames == 150
        assert keyed.frame(H264, 1).shape == (360, 640, 3)


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The retry waits the client asks for, instead of sleeping them."""
    asked: list[float] = []
    monkeypatch.setattr(lazycache.client._time, "sleep", asked.append)
    return asked


@pytest.mark.parametrize("status", [503, 429, 502, 504])
def test_transient_statuses_are_retried(proxy: Proxy, waits: list[float], status: int) -> None:
    proxy.fail_next(status, {"Retry-After": "3"})
    client = lazycache.Client(f"{proxy.url}/v1/{MIRROR}", retries=2)
    frame = client.frame(H264, 33)
    assert frame.shape == (360, 640, 3)
    assert len(proxy.seen) == 2 and proxy.seen[0] == proxy.seen[1]
    assert waits == [3.0]  # Retry-After honoured


def test_retry_after_is_bounded_and_retries_run_out(proxy: Proxy, waits: list[float]) -> None:
    for _ in range(3):
        proxy.fail_next(503, {"Retry-After": "3600"})
    client = lazycache.Client(f"{proxy.url}/v1/{MIRROR}", retries=2, max_retry_wait=7.5)
    with pytest.raises(lazycache.ServiceUnavailable) as busy:
        client.frame(H264, 34)
    assert busy.value.status == 503 and "proxy says 503" in busy.value.message
    assert waits == [7.5, 7.5]
    assert len(proxy.seen) == 3


def test_no_retries_when_turned_off(proxy: Proxy, waits: list[float]) -> None:
    proxy.fail_next(503, {"Retry-After": "1"})
    client = lazycache.Client(f"{proxy.url}/v1/{MIRROR}", retries=0)
    with pytest.raises(lazycache.ServiceUnavailable):
        client.frame(H264, 35)
    assert waits == [] and len(proxy.seen) == 1


def test_a_retried_batch_gives_the_same_array(
    proxy: Proxy, waits: list[float], raw_url: str
) -> None:
    proxy.fail_next(503, {"Retry-After": "1"})
    proxy.fail_next(503, {"Retry-After": "2"})
    client = lazycache.Client(f"{proxy.url}/v1/{MIRROR}", progress=False)
    got = client.frames(H264, range(20, 26))
    with lazycache.Client(raw_url) as direct:
        np.testing.assert_array_equal(got, direct.frames(H264, range(20, 26)))
    assert sorted(waits) == [1.0, 2.0]


def test_an_unreachable_server_is_a_transport_error(waits: list[float]) -> None:
    from .conftest import free_port

    client = lazycache.Client(f"http://127.0.0.1:{free_port()}/v1/x", retries=1)
    with pytest.raises(lazycache.TransportError):
        client.metadata(H264)
    assert len(waits) == 1
