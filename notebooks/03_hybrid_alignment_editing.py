# ---
# jupyter:
#   accelerator: GPU
#   colab:
#     provenance: []
#   e3dge:
#     ci_parameters:
#       HEADS: 1
#       NUM_CODES: 300
#       RESOLUTION: 32
#       STRENGTHS:
#       - 0.0
#       - 2.0
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
# # 03 · Editing with hybrid 2D-3D alignment
# <a href="https://colab.research.google.com/github/e3dge/e3dge/blob/main/notebooks/03_hybrid_alignment_editing.ipynb"><img src="https://colab.research.google.com/assets/colab-badge.svg" alt="Open In Colab"/></a>
#
# A global code cannot hold a photo's detail, so E3DGE adds a **local branch** (paper Sec. 4.2-4.3): E1
# encodes the residual *photo − E0's render* into a pixel-aligned feature map, and every 3D point the
# generator renders reads features where it lands in the input view (**3D alignment**), or from the
# residual moved to the new view by a 2D network E_ADA (**2D alignment**); the **hybrid** fuses both.
# The features modulate the colour (FiLM), never the density, so the geometry stays E0's.
#
# The toy lab's heads come with exact ground truth at every view and for every attribute change, so
# here you can *measure* what the paper shows by eye: you will find an editing direction, edit with and
# without the local branch, compare the alignments at a novel view and measure edit precision.

# %%
# Setup: installs e3dge in Colab (a no-op where it is installed); picks the GPU when there is one.
import importlib.util, subprocess, sys

if importlib.util.find_spec("e3dge") is None:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "e3dge[notebooks] @ git+https://github.com/e3dge/e3dge"], check=True)
from e3dge.tutorials import detect_runtime

rt = detect_runtime()
print(rt)

# %% tags=["parameters"]
HEADS = None  # held-out toy heads for the measurements; None: 16 on a GPU, 4 on a CPU
NUM_CODES = None  # sampled codes to fit a direction on; None: 4000 on a GPU, 1500 on a CPU
STRENGTHS = None  # edit strengths swept in section 4 (start with 0 = no edit); None: 0, 0.5, ..., 3
RESOLUTION = 64  # raw render size of the measurements
SHOW_SOLUTIONS = False  # True: use the reference solutions of the exercises

# %%
import ipywidgets as widgets
import numpy as np
import plotly.express as px
from IPython.display import display

from e3dge.inversion import InversionPipeline
from e3dge.tutorials import editing as X

HEADS = HEADS or (4 if rt.small else 16)
NUM_CODES = NUM_CODES or (1500 if rt.small else 4000)
STRENGTHS = STRENGTHS or [0.5 * k for k in range(7)]
pipe = InversionPipeline.from_pretrained("toy", device=rt.device)
heads = X.toy_heads(HEADS, resolution=RESOLUTION)
print("bundle directions:", ", ".join(pipe.directions), "| local branch:", pipe.local_branch.available())

# %% [markdown]
# ## 1 · Directions: what a linear boundary in W finds
# InterfaceGAN fits a linear SVM between codes whose images have an attribute and codes whose images
# don't; the boundary's normal is the edit direction. The toy bundle ships two kinds per attribute:
# fitted on **sampled** codes (`hair_colour`) and on **inverted** photo-like heads (`hair_colour_preim3d`,
# PREIM3D's *inversion manifold*). In the toy lab, labels are exact: the factor map says each head's hair colour.
#
# ### Exercise 1 — find the direction for hair colour
# `w` holds sampled codes `[N, w_dim]`, `scores` each head's hair colour in [0, 1] (black → red). Return a
# vector `[w_dim]` that points from dark to light hair. (Hint: the difference of the class means of the
# lightest and darkest thirds works; an SVM is InterfaceGAN.)

# %%
w, scores = X.sampled_codes(pipe.generator, NUM_CODES)


def hair_colour_direction(w, scores):
    raise NotImplementedError  # your code here


answer = X.hair_colour_direction_solution if SHOW_SOLUTIONS else hair_colour_direction
try:
    vector = answer(w, scores["hair_colour"])
except NotImplementedError:
    vector = None
X.check_direction(vector, pipe.directions["hair_colour"]);

# %% [markdown]
# ## 2 · Editing, with and without the local branch
# Turn the head and push an edit. With the local branch the photo's own detail (freckles, earrings,
# specular highlights) comes along; without it you see E0's smooth reconstruction. Watch the colour
# edits: the local branch reads the *unedited* photo, so it can pull a colour edit back.

# %%
inv = pipe.invert(heads.pixels[0], align=False)
controls = dict(attribute=widgets.Dropdown(options=list(pipe.directions), value="hair_colour"),
                strength=widgets.FloatSlider(value=2.0, min=-3, max=3, step=0.5), yaw=widgets.FloatSlider(value=0.4, min=-0.8, max=0.8, step=0.1))
edit_out = widgets.Output()


def show_edit(_=None) -> None:
    v = {k: c.value for k, c in controls.items()}
    images = [X.edited_view(pipe, inv, v["attribute"], v["strength"], v["yaw"], local=flag) for flag in (False, True)]
    with edit_out:
        edit_out.clear_output(wait=True)
        px.imshow(np.stack(images), facet_col=0, labels={"facet_col": "local branch"}).update_layout(height=320, width=640).show()


for c in controls.values():
    c.observe(show_edit, names="value")
display(widgets.HBox(list(controls.values())), edit_out)
show_edit()

# %% [markdown]
# ## 3 · 2D vs 3D vs hybrid alignment at a novel view (the paper's Table 3)
# One held-out head, rendered at its input view and turned 0.5 rad, with each alignment; MAE against the
# exact procedural render. The 2D alignment warps the residual with a network; the 3D alignment reads it
# where each point projects, which is exact for visible points and wrong for those the input view never
# saw; the hybrid fuses both with a visibility mask. `benchmarks/results/stage2_ablation.md` has the
# full table over many heads, each alignment trained on its own.

# %%
rows = X.alignment_comparison(pipe, heads, 0)
for name, (_, src, _, novel) in rows.items():
    print(f"{name:30s} source MAE {src:.4f}   novel-view MAE {novel:.4f}")
px.imshow(np.stack([r[2] for r in rows.values()]), facet_col=0, facet_col_wrap=6).update_layout(height=260, width=1100).for_each_annotation(
    lambda a: a.update(text=list(rows)[int(a.text.split("=")[1])])).show()

# %% [markdown]
# ### Exercise 2 — the visibility mask
# The fusion trusts the 3D branch only where a point is *visible* in the input view. The official code's
# test: the point projects inside the image. Given projected coordinates `grid [B, M, 2]` (inside when both
# are in [-1, 1]) and camera-space depth `depth [B, M, 1]` (in front when > 0), return a float mask `[B, M, 1]`.

# %%
def visibility_mask(grid, depth):
    raise NotImplementedError  # your code here


X.check_visibility(X.in_image_visibility_solution if SHOW_SOLUTIONS else visibility_mask);

# %% [markdown]
# ## 4 · Edit precision against the exact edit
# Every head's skin tone is moved by 0.3 (the toy lab renders that head exactly); we sweep the strength
# of two directions and measure, at yaw ±30°, how close the edited inversion gets — with and without the
# local branch. The minimum of each curve is the best this direction can do; where it sits says how
# strong an edit must be.

# %%
sweeps = [s for d in ("skin_tone", "skin_tone_preim3d") for s in X.edit_sweep(pipe, heads, d, STRENGTHS)]
X.sweep_figure(sweeps).show()
for s in sweeps:
    print(f"{s.direction:18s} local={s.local!s:5s} best strength {s.best[0]:.1f}: MAE {s.best[1]:.4f} (no edit: {s.mae[0]:.4f})")
