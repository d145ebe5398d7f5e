"""The app in a real browser (Debian chromium driven by playwright, software WebGL): upload, invert, turn, mesh.

Needs ``/usr/bin/chromium`` (CI installs it with apt) and the ``playwright`` Python package; it
never runs ``playwright install``. Every request the page makes must stay on 127.0.0.1.
"""

from __future__ import annotations

import io
import os
import shutil
import time
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest

pytest.importorskip("gradio")
sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not os.path.exists(CHROMIUM):
    pytest.skip("Debian chromium is not installed (apt-get install chromium)", allow_module_level=True)

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _pixels(png: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(np.float32)


@pytest.fixture(scope="module")
def app_url():
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from e3dge.app import QUEUE, build_demo, launch_kwargs

    demo = build_demo("toy")
    _, url, _ = demo.queue(**QUEUE).launch(prevent_thread_lock=True, quiet=True, **launch_kwargs())
    yield url
    demo.close()


def test_upload_invert_turn_and_mesh_in_chromium(app_url):
    from e3dge.app.ui import example_files

    photo = example_files()[0][0]
    hosts: set[str] = set()
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader"]
        )
        page = browser.new_page(viewport={"width": 1500, "height": 1500})
        page.on("request", lambda req: hosts.add(urlparse(req.url).hostname or req.url.split(":", 1)[0]))
        page.goto(app_url, wait_until="load", timeout=60000)
        page.locator("#invert").wait_for(state="visible", timeout=60000)
        page.locator("#photo input[type=file]").set_input_files(photo)
        page.get_by_label("already an aligned crop (skip face alignment)").check()
        page.locator("#invert").click()
        view = page.locator("#view img")
        view.wait_for(state="visible", timeout=60000)
        page.wait_for_function(
            "document.querySelector('#status') && document.querySelector('#status').innerText.includes('yaw')",
            timeout=60000,
        )
        time.sleep(2.0)  # the view also refreshes once when invert resets the sliders
        before, src = _pixels(view.screenshot()), view.get_attribute("src")
        yaw = page.locator("#yaw input[type=number]")
        yaw.fill("45")
        yaw.press("Enter")
        page.wait_for_function(
            "(src) => document.querySelector('#view img') && document.querySelector('#view img').src !== src",
            arg=src,
            timeout=30000,
        )
        time.sleep(0.5)
        after = _pixels(page.locator("#view img").screenshot())
        assert before.shape == after.shape and np.abs(before - after).mean() > 3.0  # the head turned
        page.locator("#mesh-button").click()
        canvas = page.locator("#mesh canvas")
        canvas.wait_for(state="visible", timeout=60000)
        deadline, spread = time.time() + 30, 0.0
        while time.time() < deadline and spread < 8.0:  # software WebGL: give the first frame time
            time.sleep(1.0)
            spread = float(_pixels(canvas.screenshot()).std())
        assert spread >= 8.0, f"the Model3D canvas looks blank (pixel std {spread:.1f})"
        DOCS.mkdir(exist_ok=True)
        page.screenshot(path=str(DOCS / "app.png"), full_page=True)
        browser.close()
    assert hosts <= {"127.0.0.1", "data", "blob"}, f"requests left 127.0.0.1: {sorted(hosts)}"
