"""Where a new view's time goes: torch.profiler tables of the toy bundle's default renders (local branch on).

    PYTHONPATH=. python benchmarks/profile_views.py      # writes benchmarks/results/profile_views.{json,md}

Each quality is rendered twice to warm up, then ``--repeat`` times under the profiler at new angles on cached planes;
the table lists the operators by their own CPU time per render (2 threads).
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from e3dge.inversion import InversionPipeline
from e3dge.inversion.examples import toy_photo_examples

OUT = Path(__file__).parent / "results"


def profile_quality(pipe: InversionPipeline, inv, quality: str, repeat: int) -> dict:
    """Total and per-operator self CPU milliseconds per render at ``quality``."""
    for k in range(2):
        pipe.render(inv, yaw=0.1 * k, quality=quality)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for k in range(repeat):
            pipe.render(inv, yaw=0.2 + 0.05 * k, quality=quality)
    events = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
    total = sum(e.self_cpu_time_total for e in events) / 1000 / repeat
    rows = [{"op": e.key, "ms": e.self_cpu_time_total / 1000 / repeat, "calls": e.count // repeat} for e in events[:20]]
    return {"total_ms": total, "ops": rows}


def markdown(result: dict) -> str:
    lines = [
        "# Where a new view's time goes (toy bundle, local branch on)",
        "",
        f"Machine: {result['machine']}; torch {result['torch']}; {result['threads']} CPU threads. "
        "Reproduce: `PYTHONPATH=. python benchmarks/profile_views.py`. Self CPU time per render.",
    ]
    for quality, res in result["qualities"].items():
        lines += [
            "",
            f"## {quality}: {res['total_ms']:.0f} ms per render",
            "",
            "| operator | ms | share | calls |",
            "|---|---|---|---|",
        ]
        for r in res["ops"]:
            lines.append(f"| {r['op']} | {r['ms']:.1f} | {100 * r['ms'] / res['total_ms']:.0f}% | {r['calls']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    pipe = InversionPipeline.from_pretrained("toy")
    inv = pipe.invert(toy_photo_examples(1, seed=4)[0].pixels, align=False)
    result = {
        "machine": platform.machine(),
        "torch": torch.__version__,
        "threads": args.threads,
        "qualities": {q: profile_quality(pipe, inv, q, args.repeat) for q in ("full", "preview")},
    }
    OUT.mkdir(exist_ok=True)
    (OUT / "profile_views.json").write_text(json.dumps(result, indent=2))
    (OUT / "profile_views.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
