# ---
# jupyter:
#   accelerator: GPU
#   colab:
#     provenance: []
#   e3dge:
#     ci_parameters:
#       EVAL_HEADS: 4
#       STEPS: 6
#     exercises: 2
#   jupytext:
#     formats: ipynb,py:percent
#     notebook_metadata_filter: accelerator,colab,e3dge
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 01 · Self-supervised training of the global encoder E0 on a small budget
# <a href="https://colab.research.google.com/github/e3dge/e3dge/blob/main/notebooks/01_self_supervised_training.ipynb"><img src="https://colab.research.google.com/assets/colab-badge.svg" alt="Open In Colab"/></a>
#
# E3DGE (Lan et al., CVPR 2023) trains its global encoder **E0** without any real 3D data: a frozen 3D GAN
# draws a latent code and a camera, renders an image **and** its geometry, and E0 learns to map the image
# back to the code and the camera. Those *pseudo 2D-3D pairs* are free and exact. Here you will
# 1. look at pseudo pairs of the toy EG3D that ships with e3dge (image, depth, surface points),
# 2. compute each Stage I loss by hand and implement two of them,
# 3. train E0 for a few minutes with and without the geometry loss L_geo,
# 4. measure depth error against the toy world's exact ground truth on held-out photo-like heads.
#
# Everything runs on a laptop CPU; a GPU runtime trains longer and unlocks the FFHQ section at the end.

# %%
# Setup: installs e3dge in Colab (a no-op where it is installed); picks the GPU when there is one.
import importlib.util, subprocess, sys

if importlib.util.find_spec("e3dge") is None:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "e3dge[notebooks] @ git+https://github.com/e3dge/e3dge"], check=True)
from e3dge.tutorials import detect_runtime

rt = detect_runtime()
print(rt)

# %% tags=["parameters"]
STEPS = None  # Stage I steps per run; None: 600 on a GPU, 60 on a CPU (about a minute each)
EVAL_HEADS = None  # held-out photo-like heads for the depth table; None: 48 on a GPU, 16 on a CPU
SHOW_SOLUTIONS = False  # True: use the reference solutions of the exercises

# %%
import torch
import ipywidgets as widgets
from IPython.display import display

from e3dge.tutorials import training as T

torch.manual_seed(0)
B = T.budget(rt.small, STEPS, EVAL_HEADS)
sampler = T.toy_sampler()
batch = sampler.sample(4, torch.Generator().manual_seed(0))
print(B)

# %% [markdown]
# ## 1 · Pseudo 2D-3D pairs
# Each pair holds the rendered image, the camera (yaw, pitch), the latent code `w` it came from, the
# rendered depth (expected distance along each ray) and two point sets: **surface points** (opaque
# pixels lifted to 3D with their depth) and **near-surface points** (the same, jittered). The generator's
# density at those points is the target of L_geo. Move the slider to browse the batch.

# %%
T.pair_figure(batch, 0).show()
pair_slider = widgets.IntSlider(0, 0, len(batch.z) - 1, description="pair")
pair_out = widgets.Output()


def show_pair(change) -> None:
    with pair_out:
        pair_out.clear_output(wait=True)
        T.pair_figure(batch, change["new"]).show()


pair_slider.observe(show_pair, names="value")
display(pair_slider, pair_out)

# %% [markdown]
# ## 2 · The Stage I losses, one by one
# E3DGE's Stage I objective is L_rec (image) + L_code (‖ŵ − w‖) + L_pose (‖ξ̂ − ξ‖) + **L_geo**: the
# density at surface points and near the surface, and the rendered depth, all compared with what the
# generator produced from the true code. Below: every term for an untrained E0 and for the toy E0 that
# ships with e3dge (trained with the same recipe).

# %%
from e3dge.toy import load_toy_encoder
from e3dge.training.stage1 import build_encoder
from e3dge.training.config import load_stage1_config

untrained = build_encoder(load_stage1_config("toy"), sampler.backbone).eval()
shipped = load_toy_encoder()
terms = {"untrained E0": T.loss_terms(untrained, sampler.backbone, batch), "shipped toy E0": T.loss_terms(shipped, sampler.backbone, batch)}
print(f"{'term':22s}" + "".join(f"{name:>18s}" for name in terms))
for key in terms["untrained E0"]:
    print(f"{key:22s}" + "".join(f"{terms[name][key]:18.4f}" for name in terms))

# %% [markdown]
# ### Exercise 1 — the surface-depth part of L_geo
# Given predicted and pseudo-ground-truth depth maps `[N, 1, H, W]` and the pseudo pair's opacity `mask`,
# return the mean absolute depth difference **over pixels whose opacity exceeds 0.5** (one scalar for the batch).

# %%
def surface_depth_term(pred_depth, depth, mask):
    raise NotImplementedError  # your code here


T.check_surface_depth_term(T.surface_depth_term_solution if SHOW_SOLUTIONS else surface_depth_term);

# %% [markdown]
# ## 3 · Stage I with and without L_geo
# Both runs use the `toy` preset of `e3dge train stage1` (same seed, same data stream); the second sets
# the three L_geo weights to 0. Runs resume: re-running this cell continues where it stopped.

# %%
runs = [T.train_stage1_variant(f"runs/stage1-{name}", B.steps, with_geo=geo, batch_size=B.batch_size)
        for name, geo in (("with-geo", True), ("without-geo", False))]
T.curves_figure(runs).show()

# %% [markdown]
# ## 4 · Held-out depth error against exact ground truth
# The toy world's photo-like heads have an exact SDF, so we can measure what no real dataset gives:
# the depth error of the inverted head, at the input view and turned 0.5 rad. Lower is better; the
# shipped E0 trained 600+ steps is the reference.

# %%
encoders = {"shipped toy E0": shipped, **{run.name: run.encoder for run in runs}}
table = T.depth_error_table(encoders, sampler.backbone.generator, B.eval_heads)
print(f"{'encoder':18s}" + "".join(f"{k:>18s}" for k in next(iter(table.values()))))
for name, row in table.items():
    print(f"{name:18s}" + "".join(f"{v:18.3f}" for v in row.values()))

# %% [markdown]
# ### Exercise 2 — the depth error metric
# Return, **per image**, the mean |pred − ref| over the reference's opaque pixels (`ref_mask > 0.5`), each
# error capped at the ray range 1.05, as a percentage of that range. Shape `[N]`.

# %%
def depth_error_pct(pred, ref, ref_mask):
    raise NotImplementedError  # your code here


T.check_depth_error_pct(T.depth_error_pct_solution if SHOW_SOLUTIONS else depth_error_pct);

# %% [markdown]
# **What to look for.** With a few dozen steps both runs are far from the shipped E0; on a GPU budget
# (600 steps) L_geo lowers depth error on the generator's own renders by about a quarter, while on
# photo-like heads the gain disappears (see `benchmarks/results/stage1_geo_ablation.md`): the
# pseudo-pair domain is not the photo domain — the gap Stage II's local branch is for (notebook 03).
#
# ## 5 · The real thing: FFHQ EG3D on a GPU runtime
# With the EG3D FFHQ weights in your Hugging Face cache and a GPU, the `ffhq-eg3d` preset trains an IR-SE50
# E0 with the paper's losses (about one GPU-hour on an H100). This cell starts it only where it can run.

# %%
why_not = T.ffhq_eg3d_ready(rt.small)
if why_not:
    print(f"skipped: {why_not}; command line: e3dge train stage1 --config ffhq-eg3d --out runs/stage1-ffhq")
else:
    from e3dge.training.stage1 import train_stage1

    train_stage1(load_stage1_config("ffhq-eg3d", {"out_dir": "runs/stage1-ffhq", "steps": STEPS or 4000}))
