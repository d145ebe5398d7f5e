"""The Gradio app, headless: launched on 127.0.0.1 and driven through its HTTP API with gradio_client."""

from __future__ import annotations

import json
import os
import threading

import numpy as np
import pytest

gr = pytest.importorskip("gradio")
gradio_client = pytest.importorskip("gradio_client")

from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

from e3dge.app import handlers as h  # noqa: E402

NO_EDITS = [0.0] * h.MAX_SLIDERS


def _img(path) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB"))


@pytest.fixture(scope="module")
def server():
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from e3dge.app import QUEUE, build_demo, launch_kwargs
    from e3dge.app.ui import example_files

    demo = build_demo("toy")
    _, url, _ = demo.queue(**QUEUE).launch(prevent_thread_lock=True, quiet=True, **launch_kwargs())
    assert url.startswith("http://127.0.0.1:")
    yield url, example_files()
    demo.close()


def _edits(**named) -> list[float]:
    names = [n for n, _, _ in h.direction_sliders("toy")]
    values = NO_EDITS.copy()
    for k, v in named.items():
        values[names.index(k)] = v
    return values


def test_invert_view_edit_mesh_video_json(server, tmp_path):
    trimesh = pytest.importorskip("trimesh")
    import imageio.v3 as iio

    url, examples = server
    c = Client(url, verbose=False)
    crop, info, (inp, recon), message, view, yaw, pitch = c.predict(
        handle_file(examples[0][0]), True, "toy", api_name="/invert"
    )
    assert (
        message.startswith("e0+local: yaw") and _img(recon).shape == (384, 384, 3) and _img(inp).shape == (384, 384, 3)
    )
    assert np.abs(_img(recon).astype(float) - _img(inp)).mean() / 255 < 0.12  # the reconstruction resembles the input
    front = _img(c.predict(0, 0, *NO_EDITS, api_name="/view"))
    turned = _img(c.predict(40, 0, *NO_EDITS, api_name="/view"))
    smiling = _img(c.predict(0, 0, *_edits(smile=2.0), api_name="/view"))
    assert np.abs(front.astype(float) - turned).mean() > 5 and np.abs(front.astype(float) - smiling).mean() > 0.5
    mesh = trimesh.load(c.predict(*_edits(smile=2.0), api_name="/mesh"), process=False, force="mesh")
    assert len(mesh.faces) > 5000 and np.asarray(mesh.visual.vertex_colors).shape == (len(mesh.vertices), 4)
    video = c.predict(*NO_EDITS, api_name="/video")
    path = video["video"] if isinstance(video, dict) else video
    frames = iio.imread(path)
    assert frames.shape[0] == 48 and frames.shape[-1] == 3
    (inp2, recon2), refined = c.predict(api_name="/refine")
    assert refined.startswith("refined (P+C): loss")
    first, last = (float(v) for v in refined.split("loss ")[1].split(" in ")[0].split(" -> "))
    assert last < first
    assert (
        np.abs(_img(recon2).astype(float) - _img(inp2)).mean() < np.abs(_img(recon).astype(float) - _img(inp)).mean()
    )  # closer to the input
    info = json.loads(open(c.predict(*_edits(glasses=1.5), api_name="/json")).read())
    assert (
        info["bundle"] == "toy"
        and info["edits"] == {"glasses": 1.5}
        and info["method"] == "e0+pose+code+local"
        and len(info["camera_label"]) == 25
    )


def test_bad_inputs_are_one_line_errors_and_the_app_stays_up(server, tmp_path):
    url, examples = server
    c = Client(url, verbose=False)
    text = tmp_path / "notes.png"
    text.write_bytes(b"this is not an image at all")
    with pytest.raises(AppError) as err:
        c.predict(handle_file(str(text)), False, "toy", api_name="/invert")
    assert "\n" not in str(err.value) and "image" in str(err.value).lower()
    blank = tmp_path / "blank.png"
    from PIL import Image

    Image.new("RGB", (256, 256), (200, 180, 160)).save(blank)
    with pytest.raises(AppError, match="no face found"):
        c.predict(handle_file(str(blank)), False, "toy", api_name="/invert")
    bomb = tmp_path / "bomb.png"
    Image.new("1", (12000, 12000)).save(bomb)  # 144 MP in a tiny file
    with pytest.raises(AppError, match="(?i)pixels|too large|megapixel"):
        c.predict(handle_file(str(bomb)), False, "toy", api_name="/invert")
    huge = tmp_path / "huge.png"
    huge.write_bytes(os.urandom(21 * 1024 * 1024))
    with pytest.raises(ValueError, match="exceeds the maximum file size"):  # refused before upload (and by the server)
        c.predict(handle_file(str(huge)), False, "toy", api_name="/invert")
    with pytest.raises(AppError, match="invert a photo first"):
        Client(url, verbose=False).predict(*NO_EDITS, api_name="/mesh")
    out = c.predict(handle_file(examples[1][0]), True, "toy", api_name="/invert")  # still serving
    assert out[3].startswith("e0+local:")


def test_eight_clients_at_once_match_sequential_results(server):
    url, examples = server
    paths = [examples[k % 3][0] for k in range(8)]
    sequential = [
        _img(Client(url, verbose=False).predict(handle_file(p), True, "toy", api_name="/invert")[4]) for p in paths[:3]
    ]
    results: dict[int, np.ndarray] = {}

    def one(k: int) -> None:
        results[k] = _img(Client(url, verbose=False).predict(handle_file(paths[k]), True, "toy", api_name="/invert")[4])

    threads = [threading.Thread(target=one, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=240)
    assert len(results) == 8
    for k in range(8):
        assert np.array_equal(results[k], sequential[k % 3]), k


def test_handlers_without_gradio_state_rules():
    with pytest.raises(Exception, match="invert a photo first"):
        h.render_view(h.AppState("toy"), 0, 0, NO_EDITS)
    with pytest.raises(Exception, match="upload a photo first"):
        h.align_photo(None, "toy")
    names = [n for n, _, _ in h.direction_sliders("toy")]
    assert "smile" in names and "smile_preim3d" in names and len(names) <= h.MAX_SLIDERS
    assert h.edits_from_sliders("toy", _edits(smile=1.0)) == {"smile": 1.0}


def test_bundle_list_is_offline_safe(monkeypatch):
    from e3dge.app.models import available_bundles

    offline = available_bundles({"HF_HUB_OFFLINE": "1"})
    assert [c.source for c in offline] == ["toy"]
    online = available_bundles({"HF_HUB_OFFLINE": "0", "E3DGE_MODEL": "me/my-bundle"})
    assert [c.source for c in online][:2] == ["me/my-bundle", "toy"] and "eg3d-ffhq" in [c.source for c in online]


def test_output_pictures_are_written_once_and_whole(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from PIL import Image

    from e3dge.app.components import png_in_cache as _png_in_cache

    picture = np.random.default_rng(0).integers(0, 256, (96, 96, 3), dtype=np.uint8)
    with ThreadPoolExecutor(8) as pool:
        paths = list(pool.map(lambda _: _png_in_cache(picture, str(tmp_path)), range(16)))
    assert len(set(paths)) == 1
    first = os.stat(paths[0])
    again = _png_in_cache(picture, str(tmp_path))
    assert (
        again == paths[0] and os.stat(again).st_ino == first.st_ino and os.stat(again).st_mtime_ns == first.st_mtime_ns
    )
    assert np.array_equal(np.asarray(Image.open(again)), picture)
    assert sorted(p.name for p in again.parent.iterdir()) == ["image.png"]
    other = _png_in_cache(picture[::-1].copy(), str(tmp_path))
    assert other.parent != again.parent and "not an array" == _png_in_cache("not an array", str(tmp_path))


def test_downloads_live_in_one_folder_per_visitor_removed_when_they_leave(tmp_path, monkeypatch):
    from e3dge.app.ui import DELETE_CACHE, build_demo
    from e3dge.inversion import InversionPipeline
    from e3dge.inversion.examples import toy_photo_examples

    monkeypatch.setattr(h, "VISITORS", tmp_path / "visitors")
    inv = InversionPipeline.from_pretrained("toy").invert(toy_photo_examples(1, seed=2)[0].pixels, align=False)
    state = h.AppState("toy", inv)
    for visitor in ("visitor-a", "visitor-b"):
        for _ in range(3):  # each download replaces the last of its kind
            h.result_json(state, NO_EDITS, session=visitor)
            h.mesh_file(state, NO_EDITS, resolution=32, session=visitor)
    folders = sorted((tmp_path / "visitors").iterdir())
    assert len(folders) == 2 and all(
        sorted(p.name for p in f.iterdir()) == ["face.glb", "inversion.json"] for f in folders
    )
    h.forget_visitor("visitor-a")
    assert len(list((tmp_path / "visitors").iterdir())) == 1
    demo = build_demo()
    assert demo.delete_cache == DELETE_CACHE
    assert any(event == "unload" for fn in demo.fns.values() for _, event in fn.targets)
