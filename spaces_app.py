"""Hugging Face Space entry point: the e3dge app (upload a face, see it in 3D, turn it, edit it, download it).

Run locally with ``python spaces_app.py`` (127.0.0.1:7860, the offline toy bundle by default;
``E3DGE_MODEL=<bundle folder or Hub id>`` adds a model). All logic lives in ``e3dge.app``.
"""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from e3dge.app import QUEUE, build_demo, launch_kwargs  # noqa: E402

demo = build_demo()

if __name__ == "__main__":
    demo.queue(**QUEUE).launch(**launch_kwargs(int(os.environ.get("GRADIO_SERVER_PORT", "7860"))))
