"""The Gradio Blocks UI: upload -> align -> invert (+ refine) -> turn and edit -> depth, mesh, video, JSON.

Only layout and wiring live here; every callback is a thin wrapper over :mod:`e3dge.app.handlers`
that turns package errors into one-line ``gr.Error`` messages (the app stays up). GPU callbacks are
wrapped with ``spaces.GPU`` when that package is installed (ZeroGPU); elsewhere it is a no-op.
"""

from __future__ import annotations

import functools
import logging
import os
import tempfile
from pathlib import Path

import gradio as gr
import numpy as np
from PIL import Image

from e3dge.app import handlers as h
from e3dge.app.components import ImageOutput, ImageSliderOutput, PhotoInput
from e3dge.app.models import available_bundles
from e3dge.core.errors import UserError
from e3dge.core.files import write_png
from e3dge.inversion.examples import astronaut_example, toy_photo_examples

__all__ = ["build_demo", "launch_kwargs", "MAX_FILE_SIZE", "example_files"]

log = logging.getLogger("e3dge.app")
MAX_FILE_SIZE = "20mb"
"""Largest upload accepted (Gradio refuses bigger files before they reach the app)."""
QUEUE = dict(default_concurrency_limit=2, max_size=32)
TITLE = "e3dge: one photo -> an editable 3D face"
DISPLAY_SIZE = 384


DELETE_CACHE = (600, 3600)
"""Gradio's own cache: every 10 minutes, files older than an hour are removed (a long-running Space never fills its disk)."""


def _session(request) -> str | None:
    """Gradio's session id of the visitor making ``request`` (None outside a browser session)."""
    return request.session_hash if request is not None else None


GPU_SECONDS = {"invert": 10, "refine": 30, "view": 5, "depth": 5, "mesh": 15, "video": 20}
"""ZeroGPU time each callback asks for (shorter requests are queued first): estimates, at least ZeroGPU's 5 s, above the
toy's CPU times in benchmarks/results/app.md for the short calls; benchmarks/gpu.py measures the GPU times to set them
from. Refinement's 50 steps and the orbit's 48 frames are the long ones."""


def _gpu(fn, kind: str):
    """``spaces.GPU(duration=GPU_SECONDS[kind])(fn)`` on a ZeroGPU Space (the ``spaces`` package), ``fn`` elsewhere."""
    try:
        import spaces  # type: ignore[import-not-found]
    except ImportError:
        return fn
    return spaces.GPU(duration=GPU_SECONDS[kind])(fn)


def _messages(fn):
    """Run a callback; a user error or a bad file becomes one ``gr.Error`` line, anything else a short internal-error line."""

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except (UserError, ValueError, OSError) as err:
            raise gr.Error(str(err).splitlines()[0][:400] or type(err).__name__, duration=12) from None
        except Exception as err:  # noqa: BLE001 - the app must stay up; the log has the traceback
            log.exception("callback %s failed", fn.__name__)
            raise gr.Error(
                f"internal error ({type(err).__name__}); the server log has the details", duration=12
            ) from None

    return wrapped


def example_files(folder: Path | None = None) -> list[tuple[str, bool]]:
    """(path, already aligned) of the examples: photo-like toy heads (aligned renders) and scikit-image's astronaut (a photo)."""

    folder = folder or Path(tempfile.gettempdir()) / "e3dge-app-examples"
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for ex in toy_photo_examples(num=3):
        path = folder / f"{ex.name}.png"
        if not path.exists():
            write_png(path, ex.pixels)
        out.append((str(path), True))
    try:
        astro = astronaut_example()
    except Exception:  # noqa: BLE001 - scikit-image's sample data missing: toy examples only
        return out
    path = folder / "astronaut.png"
    if not path.exists():
        Image.fromarray(astro.pixels).save(path)
    out.append((str(path), False))
    return out


def _display(image, size: int = DISPLAY_SIZE):
    """Small renders upscaled for the page (the toy model renders 128 px; browsers would show them tiny)."""

    if image is None or image.shape[0] >= size:
        return image
    return np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.LANCZOS))


def _slider_updates(bundle: str) -> list:
    """One ``gr.update`` per slider: the bundle's directions fill them (label, range), the rest are hidden."""
    dirs = h.direction_sliders(bundle)
    ups = []
    for k in range(h.MAX_SLIDERS):
        if k < len(dirs):
            name, lo, hi = dirs[k]
            ups.append(
                gr.update(
                    visible=True, label=name.replace("_", " "), minimum=round(lo, 2), maximum=round(hi, 2), value=0
                )
            )
        else:
            ups.append(gr.update(visible=False, value=0))
    return ups


def build_demo(default_bundle: str | None = None):
    """The app as a ``gr.Blocks`` (call ``.queue(...).launch(...)`` or use :func:`launch_kwargs`)."""
    choices = available_bundles()
    bundle0 = default_bundle or choices[0].source
    if bundle0 not in {c.source for c in choices}:
        choices.insert(0, type(choices[0])(bundle0, bundle0))
    examples = example_files()

    with gr.Blocks(title=TITLE, fill_width=True, analytics_enabled=False, delete_cache=DELETE_CACHE) as demo:
        state = gr.State(h.AppState(bundle0))
        alignment = gr.State(None)
        gr.Markdown(
            f"## {TITLE}\nUpload a face, see it in 3D, turn it, edit it, download it. The default *toy* model runs offline "
            "and only knows procedural toy heads: it cannot look like a real person (real faces need real weights)."
        )
        with gr.Row():
            with gr.Column(scale=1):
                photo = PhotoInput(
                    type="filepath",
                    label="photo",
                    sources=["upload", "webcam", "clipboard"],
                    height=300,
                    elem_id="photo",
                )
                skip_align = gr.Checkbox(label="already an aligned crop (skip face alignment)", value=False)
                model = gr.Dropdown([(c.label, c.source) for c in choices], value=bundle0, label="model")
                toonify = gr.Checkbox(
                    label="toonify (the bundle's Toonify generator)",
                    value=False,
                    visible=h.has_toonify(bundle0),
                    elem_id="toonify",
                )
                go_btn = gr.Button("1-2. align and invert", variant="primary", elem_id="invert")
                gr.Examples([[p, a] for p, a in examples], inputs=[photo, skip_align], label="examples")
            with gr.Column(scale=1):
                crop = ImageOutput(
                    format="png", interactive=False, label="1. aligned crop with landmarks", height=300, elem_id="crop"
                )
                align_info = gr.Markdown()
            with gr.Column(scale=1):
                compare = ImageSliderOutput(
                    format="png", interactive=False, label="2. input | reconstruction", height=300, elem_id="compare"
                )
                status = gr.Markdown(elem_id="status")
                refine_btn = gr.Button("refine (pose + code, 50 steps)")
        gr.Markdown("### 3. turn and edit")
        with gr.Row():
            with gr.Column(scale=1):
                yaw = gr.Slider(-60, 60, value=0, step=1, label="yaw (degrees)", elem_id="yaw")
                pitch = gr.Slider(-30, 30, value=0, step=1, label="pitch (degrees)", elem_id="pitch")
                with gr.Accordion("edits", open=True):
                    sliders = [
                        gr.Slider(-3, 3, value=0, step=0.05, label=f"direction {k}", visible=False)
                        for k in range(h.MAX_SLIDERS)
                    ]
            with gr.Column(scale=1):
                view = ImageOutput(
                    format="png", interactive=False, label="edited novel view", height=320, elem_id="view"
                )
            with gr.Column(scale=1):
                depth = gr.Plot(label="depth (3D surface)", elem_id="depth")
        with gr.Row():
            mesh_btn = gr.Button("mesh (.glb)", elem_id="mesh-button")
            video_btn = gr.Button("orbit video (.mp4)")
            json_btn = gr.Button("camera + latent (.json)")
        with gr.Row():
            mesh = gr.Model3D(label="mesh", clear_color=(1, 1, 1, 1), height=360, elem_id="mesh")
            video = gr.Video(label="orbit", format="mp4", height=360)
            json_file = gr.File(label="inversion.json")

        # ---------------------------------------------------------------- callbacks
        @_messages
        def on_invert(photo_path, skip, bundle, st, toon=False):
            a = h.align_photo(photo_path, bundle, skip_alignment=bool(skip))
            res = h.invert_photo(st, a, bundle, toonify=bool(toon))
            pose = (
                f"yaw {a.yaw_deg:+.1f} deg, pitch {a.pitch_deg:+.1f} deg (aligner)"
                if a.yaw_deg is not None
                else "aligned crop given; camera from the encoder"
            )
            info = pose + "".join(f"\n\n**warning:** {w}" for w in a.warnings)
            for w in a.warnings:
                gr.Warning(w)
            return (
                _display(a.preview),
                info,
                (_display(res.aligned), _display(res.reconstruction)),
                res.message,
                res.state,
                a,
                _display(res.reconstruction),
                0,
                0,
            )

        @_messages
        def on_refine(st, progress=gr.Progress(track_tqdm=True)):
            res = h.refine(st)
            return (_display(res.aligned), _display(res.reconstruction)), res.message, res.state

        @_messages
        def on_view(st, y, p, *strengths):
            if st is None or st.inversion is None:
                return gr.update()
            return _display(h.render_view(st, y, p, list(strengths)))

        @_messages
        def on_depth(st, y, p, *strengths):
            if st is None or st.inversion is None:
                return gr.update()
            return h.depth_figure(st, y, p, list(strengths))

        new_view, depth_figure = _gpu(on_view, "view"), _gpu(on_depth, "depth")

        @_messages
        def on_mesh(request: gr.Request, st, *strengths):  # Gradio fills a gr.Request parameter placed before *args
            return h.mesh_file(st, list(strengths), session=_session(request))

        @_messages
        def on_video(request: gr.Request, st, *strengths, progress=gr.Progress(track_tqdm=True)):
            return h.orbit_video(st, list(strengths), session=_session(request))

        @_messages
        def on_json(request: gr.Request, st, *strengths):
            return h.result_json(st, list(strengths), session=_session(request))

        def on_leave(request: gr.Request):
            h.forget_visitor(_session(request))

        @_messages
        def on_model(bundle):
            return [
                h.AppState(bundle),
                None,
                None,
                "",
                None,
                gr.update(visible=h.has_toonify(bundle), value=False),
                *_slider_updates(bundle),
            ]

        view_inputs = [state, yaw, pitch, *sliders]
        go_btn.click(
            _gpu(on_invert, "invert"),
            [photo, skip_align, model, state, toonify],
            [crop, align_info, compare, status, state, alignment, view, yaw, pitch],
            api_name="invert",
        ).then(depth_figure, view_inputs, depth, api_name=False)
        refine_btn.click(_gpu(on_refine, "refine"), [state], [compare, status, state], api_name="refine").then(
            new_view, view_inputs, view, api_name=False
        ).then(depth_figure, view_inputs, depth, api_name=False)
        for control in (yaw, pitch, *sliders):
            control.change(
                new_view, view_inputs, view, show_progress="hidden", api_name=False, trigger_mode="always_last"
            )
            control.release(depth_figure, view_inputs, depth, show_progress="hidden", api_name=False)
        gr.Button(visible=False).click(
            new_view, view_inputs, view, api_name="view"
        )  # a stable API for clients and tests
        gr.Button(visible=False).click(depth_figure, view_inputs, depth, api_name="depth")
        mesh_btn.click(_gpu(on_mesh, "mesh"), [state, *sliders], mesh, api_name="mesh")
        video_btn.click(_gpu(on_video, "video"), [state, *sliders], video, api_name="video")
        json_btn.click(on_json, [state, *sliders], json_file, api_name="json")
        model.change(on_model, model, [state, alignment, compare, status, view, toonify, *sliders], api_name=False)
        demo.load(lambda: _slider_updates(bundle0), None, sliders, api_name=False)
        demo.unload(on_leave)  # the visitor's download folder goes with them
    return demo


def launch_kwargs(port: int | None = None) -> dict:
    """What ``launch`` gets: loopback only unless ``GRADIO_SERVER_NAME`` says otherwise, the upload limit, errors shown."""
    return dict(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        server_port=port,
        max_file_size=MAX_FILE_SIZE,
        show_error=True,
    )
