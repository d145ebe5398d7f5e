"""App speed through the real HTTP API (gradio_client against the launched app, toy bundle, this CPU).

Each row is the median wall time of a client call, upload and download included: upload -> reconstruction
(align skipped for the toy render; with dlib alignment for the astronaut photo), slider -> new view,
edit -> new view, mesh (.glb, 128^3 grid), orbit video (48 frames), JSON.

    PYTHONPATH=. python benchmarks/app.py     # writes benchmarks/results/app.{json,md}
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

TARGETS = {
    "upload -> reconstruction (toy render)": 2.0,
    "upload -> reconstruction (astronaut, dlib alignment)": 2.0,
    "slider -> new view": 0.5,
    "edit -> new view": 0.5,
}


def timed(fn, repeat: int) -> float:
    """Median seconds of ``repeat`` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def run(repeat: int) -> dict[str, float]:
    """Launch the app on 127.0.0.1 and time each call."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from gradio_client import Client, handle_file

    from e3dge.app import QUEUE, build_demo, launch_kwargs
    from e3dge.app.handlers import MAX_SLIDERS, direction_sliders
    from e3dge.app.ui import example_files

    demo = build_demo("toy")
    _, url, _ = demo.queue(**QUEUE).launch(prevent_thread_lock=True, quiet=True, **launch_kwargs())
    try:
        c = Client(url, verbose=False)
        examples = example_files()
        toy, astro = examples[0][0], examples[-1][0]
        rows = {
            "upload -> reconstruction (toy render)": timed(
                lambda: c.predict(handle_file(toy), True, "toy", api_name="/invert"), repeat
            ),
            "upload -> reconstruction (astronaut, dlib alignment)": timed(
                lambda: c.predict(handle_file(astro), False, "toy", api_name="/invert"), repeat
            ),
        }
        c.predict(handle_file(toy), True, "toy", api_name="/invert")
        none = [0.0] * MAX_SLIDERS
        yaws = iter(range(-60, 60, 3))
        rows["slider -> new view"] = timed(lambda: c.predict(next(yaws), 0, *none, api_name="/view"), repeat)
        smile = [n for n, _, _ in direction_sliders("toy")].index("smile")
        strengths = iter([0.1 * k for k in range(1, 40)])

        def edit():
            values = none.copy()
            values[smile] = next(strengths)
            c.predict(10, 0, *values, api_name="/view")

        rows["edit -> new view"] = timed(edit, repeat)
        rows["depth figure"] = timed(lambda: c.predict(10, 0, *none, api_name="/depth"), max(1, repeat // 2))
        rows["mesh (.glb, 128^3)"] = timed(lambda: c.predict(*none, api_name="/mesh"), max(1, repeat // 3))
        rows["orbit video (48 frames)"] = timed(lambda: c.predict(*none, api_name="/video"), 1)
        rows["JSON"] = timed(lambda: c.predict(*none, api_name="/json"), repeat)
    finally:
        demo.close()
    return rows


def markdown(result: dict) -> str:
    lines = [
        "# App speed (HTTP API, toy bundle)",
        "",
        f"Machine: {result['machine']}; torch {result['torch']}; {result['threads']} CPU threads.",
        "Reproduce: `PYTHONPATH=. python benchmarks/app.py`. Median seconds per client call (upload/download included).",
        "",
        "| call | seconds | target | |",
        "|---|---|---|---|",
    ]
    for name, secs in result["rows"].items():
        target = TARGETS.get(name)
        verdict = "" if target is None else ("pass" if secs <= target else "MISS")
        lines.append(f"| {name} | {secs:.3f} | {'' if target is None else f'<= {target}'} | {verdict} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=6)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    a = p.parse_args()
    result = {
        "machine": platform.machine(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "rows": run(a.repeat),
    }
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "app.json").write_text(json.dumps(result, indent=1))
    (a.out / "app.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
