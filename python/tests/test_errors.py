"""Errors carry the server's status and words; 429/502/503/504 are retried per Retry-After;
API keys."""

from __future__ import annotations

import time

import numpy as np
import pytest

import lazycache

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


# Retries wait for real (no patched sleep): the waits are measured on the clock. Without
# Retry-After the first backoff is at most 0.75 s, so a wait of 1 s or more is the header's.


@pytest.mark.parametrize("status", [503, 429, 502, 504])
def test_transient_statuses_are_retried_after_retry_after(proxy: Proxy, status: int) -> None:
    proxy.fail_next(status, {"Retry-After": "1"})
    client = lazycache.Client(f"{proxy.url}/v1/{MIRROR}", retries=2)
    started = time.monotonic()
    frame = client.frame(H264, 33)
    waited = time.monotonic() - started
    assert frame.shape == (360, 640, 3)
    assert len(proxy.seen) == 2 and proxy.seen[0] == proxy.seen[1]
    assert 1.0 <= waited < 5.0  # Retry-After honoured


def test_retry_after_is_bounded_and_retries_run_out(proxy: Proxy) -> None:
    for _ in range(3):
        proxy.fail_next(503, {"Retry-After": "3600"})
    client = lazycache.Client(f"{proxy.url}/v1/{MIRROR}", retries=2, max_retry_wait=0.4)
    started = time.monotonic()
    with pytest.raises(lazycache.ServiceUnavailable) as busy:
        client.frame(H264, 34)
    waited = time.monotonic() - started
    assert busy.value.status == 503 and "proxy says 503" in busy.value.message
    assert busy.value.body == {
        "URL": f"/v1/{MIRROR}/{H264}/frame/34.npy",
        "Error": "proxy says 503",
    }
    assert 0.8 <= waited < 5.0  # two waits of max_retry_wait, not an hour
    assert len(proxy.seen) == 3


def test_no_retries_when_turned_off(proxy: Proxy) -> None:
    proxy.fail_next(503, {"Retry-After": "30"})
    client = lazycache.Client(f"{proxy.url}/v1/{MIRROR}", retries=0)
    started = time.monotonic()
    with pytest.raises(lazycache.ServiceUnavailable):
        client.frame(H264, 35)
    assert time.monotonic() - started < 5.0 and len(proxy.seen) == 1


def test_a_retried_batch_gives_the_same_array(proxy: Proxy, raw_url: str) -> None:
    proxy.fail_next(503, {"Retry-After": "1"})
    proxy.fail_next(503, {"Retry-After": "2"})
    client = lazycache.Client(f"{proxy.url}/v1/{MIRROR}", progress=False)
    started = time.monotonic()
    got = client.frames(H264, range(20, 26))
    assert time.monotonic() - started >= 2.0
    with lazycache.Client(raw_url) as direct:
        np.testing.assert_array_equal(got, direct.frames(H264, range(20, 26)))


def test_a_slow_answer_times_out_and_is_retried(proxy: Proxy) -> None:
    proxy.delay_next(3.0)
    impatient = lazycache.Client(f"{proxy.url}/v1/{MIRROR}", timeout=0.5, retries=0)
    started = time.monotonic()
    with pytest.raises(lazycache.RequestTimeout, match="timeout"):
        impatient.metadata(H264)
    assert time.monotonic() - started < 2.5
    proxy.delay_next(3.0)
    patient = lazycache.Client(f"{proxy.url}/v1/{MIRROR}", timeout=1.0, retries=1)
    assert patient.frame(H264, 36).shape == (360, 640, 3)  # the second try is not held back


def test_an_unreachable_server_is_a_transport_error() -> None:
    from .conftest import free_port

    client = lazycache.Client(f"http://127.0.0.1:{free_port()}/v1/x", retries=1)
    with pytest.raises(lazycache.TransportError, match="ConnectError"):
        client.metadata(H264)
