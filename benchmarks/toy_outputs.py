"""Every pipeline output of the toy bundle in one .npz, to compare two versions of e3dge bit for bit.

PYTHONPATH=<tree A> python benchmarks/toy_outputs.py A.npz; PYTHONPATH=<tree B> python benchmarks/toy_outputs.py B.npz
python benchmarks/toy_outputs.py --compare A.npz B.npz      # max abs diff per output
"""

from __future__ import annotations

import sys
import warnings

import numpy as np
import torch

from e3dge.export import MeshOptions, extract_mesh
from e3dge.inversion import InversionPipeline
from e3dge.inversion.examples import toy_photo_examples


def outputs() -> dict[str, np.ndarray]:
    """E0 inversion, full / preview views with the local branch, an edit, a 5-step P+C refinement, a 32^3 mesh."""
    warnings.simplefilter("ignore")
    torch.set_num_threads(2)
    pipe = InversionPipeline.from_pretrained("toy")
    ex = toy_photo_examples(num=2, seed=5150)
    inv = pipe.invert(ex[0].pixels, align=False)
    refined = pipe.invert(ex[1].pixels, align=False, refine="pose+code", steps=5)
    mesh = extract_mesh(pipe, inv, options=MeshOptions(resolution=32))
    return {
        "e0_recon": inv.reconstruction,
        "e0_ws": inv.ws.numpy(),
        "full_local": pipe.render(inv, yaw=0.3, quality="full").image,
        "preview_local": pipe.render(inv, yaw=0.3, quality="preview").image,
        "edit": pipe.render(inv, yaw=-0.2, edits={next(iter(pipe.directions)): 1.0}, quality="full").image,
        "pc_recon": refined.reconstruction,
        "pc_ws": refined.ws.numpy(),
        "mesh_v": mesh.vertices,
        "mesh_level": np.array(mesh.level),
    }


if __name__ == "__main__":
    if sys.argv[1] == "--compare":
        a, b = np.load(sys.argv[2]), np.load(sys.argv[3])
        for k in a:
            same = a[k].shape == b[k].shape
            print(
                k,
                float(np.abs(a[k].astype(float) - b[k].astype(float)).max())
                if same
                else f"shape {a[k].shape} vs {b[k].shape}",
            )
    else:
        np.savez(sys.argv[1], **outputs())
