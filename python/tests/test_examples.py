"""The three examples of python/examples, run as a user runs them against scripts/run's server.

scripts/run serves its demo library (prores_hq_1080p.mov and h264_longgop_faststart.mp4, copied
from the fixtures) as a ``file://`` mirror named ``demo`` without raw output; the server here is
started the same way, so the examples take the PNG path, as they do against scripts/run.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import lazycache

from .conftest import FIXTURES, H264, PRORES, Servers

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(scope="module")
def demo_url(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> str:
    """``…/v1/demo`` of a server serving scripts/run's demo library as scripts/run does."""
    demo = tmp_path_factory.mktemp("demo")
    for name in (PRORES, H264):
        if not (FIXTURES / name).is_file():
            pytest.fail(
                f"fixture {FIXTURES / name} is missing: run scripts/fixtures", pytrace=False
            )
        shutil.copyfile(FIXTURES / name, demo / name)
    return f"{servers.url('--mirror', f'demo=file://{demo}/')}/v1/demo"


def run_example(name: str, *args: str, cwd: Path) -> str:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, f"{name} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_timelapse(demo_url: str, tmp_path: Path) -> None:
    out = run_example("timelapse.py", demo_url, "--out", "lapse.png", cwd=tmp_path)
    assert f"2 movies in /\n{H264}: frame 1 (0.000 s in)" in out
    assert "wrote lapse.png: 2 pictures of 320x180" in out
    montage = np.asarray(Image.open(tmp_path / "lapse.png"))
    with lazycache.Client(demo_url, progress=False) as lc:
        lapse = lc.across([H264, PRORES], 1, width=320, height=180)
    np.testing.assert_array_equal(montage, np.concatenate(list(lapse), axis=1))


def test_gray16_crop(demo_url: str, tmp_path: Path) -> None:
    out = run_example("gray16_crop.py", demo_url, cwd=tmp_path)
    assert f"{PRORES}: 75 frames 1920x1080 prores 10-bit" in out
    assert "luma uint16 (15, 360, 640)" in out
    rows = [line.split() for line in out.splitlines() if line[:5].strip().isdigit()]
    assert [int(row[0]) for row in rows] == list(range(1, 76, 5))


def test_every_nth_frame_through_dask(demo_url: str, tmp_path: Path) -> None:
    out = run_example("every_nth_dask.py", demo_url, "--step", "10", cwd=tmp_path)
    assert f"{H264}: 15 frames of 320x180, mean luma" in out
    assert f"{PRORES}: 8 frames of 320x180, mean luma" in out
