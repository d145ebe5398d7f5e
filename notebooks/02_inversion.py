# ---
# jupyter:
#   accelerator: GPU
#   colab:
#     provenance: []
#   e3dge:
#     ci_parameters:
#       FRAMES: 6
#       HEADS: 1
#       OPT_STEPS: 4
#       REFINE_STEPS: 3
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
# # 02 · Inversion: from one photo to a 3D face
# <a href="https://colab.research.google.com/github/e3dge/e3dge/blob/main/notebooks/02_inversion.ipynb"><img src="https://colab.research.google.com/assets/colab-badge.svg" alt="Open In Colab"/></a>
#
# *Inversion* finds the latent code (and camera) for which the 3D GAN renders your photo. E3DGE's
# global encoder **E0** does it in one forward pass; test-time refinement of the pose (**P**) or of the
# pose and the code (**P+C**) trades time for fidelity; **optimisation** (W+ codes, then pivotal tuning
# of the generator, PTI) is the slow baseline encoders are measured against. You will align a real photo,
# invert toy photos whose exact 3D ground truth is known, compare the methods and turn the result.

# %%
# Setup: installs e3dge in Colab (a no-op where it is installed); picks the GPU when there is one.
import importlib.util, subprocess, sys

if importlib.util.find_spec("e3dge") is None:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "e3dge[notebooks,faces] @ git+https://github.com/e3dge/e3dge"], check=True)
from e3dge.tutorials import detect_runtime

rt = detect_runtime()
print(rt)

# %% tags=["parameters"]
HEADS = None  # toy heads in the comparison; None: 8 on a GPU, 3 on a CPU
REFINE_STEPS = None  # P / P+C refinement steps; None: 50
OPT_STEPS = None  # optimisation baseline steps (W+, then half as many PTI); None: 200 on a GPU, 60 on a CPU
FRAMES = None  # orbit video frames; None: 48 on a GPU, 24 on a CPU
MODEL = "toy"  # the bundle that inverts the photo in section 1: "toy", "eg3d-ffhq", or a folder such as one converted from the official E3DGE weights
SHOW_SOLUTIONS = False  # True: use the reference solutions of the exercises

# %%
import ipywidgets as widgets
import numpy as np
import plotly.express as px
from IPython.display import display

from e3dge.inversion import InversionPipeline
from e3dge.inversion.examples import astronaut_example
from e3dge.tutorials import show_video
from e3dge.tutorials import editing as X
from e3dge.tutorials import inversion as I

HEADS = HEADS or (3 if rt.small else 8)
REFINE_STEPS = REFINE_STEPS or 50
OPT_STEPS = OPT_STEPS or (60 if rt.small else 200)
FRAMES = FRAMES or (24 if rt.small else 48)
pipe = InversionPipeline.from_pretrained("toy", device=rt.device)
heads = X.toy_heads(HEADS)

# %% [markdown]
# ## 1 · A real photo: alignment, then E0
# e3dge finds the face (dlib), crops it the way EG3D's training data was cropped and estimates the head's
# pose from the landmarks. The toy model has only ever seen procedural toy heads, so its reconstruction
# of a real person is a toy head in the same pose: with real weights (`MODEL = "eg3d-ffhq"`, or a bundle
# converted from the official E3DGE weights, README "Using the official E3DGE weights") the same call
# gives a real 3D face.

# %%
astronaut = astronaut_example()
photo_pipe = pipe if MODEL == "toy" else InversionPipeline.from_pretrained(MODEL, device=rt.device)
inv = photo_pipe.invert(astronaut.pixels, align=True)
print(f"estimated pose: yaw {inv.degrees[0]:+.1f}°, pitch {inv.degrees[1]:+.1f}° ({inv.camera_source}); notes: {inv.notes or 'none'}")
panels = I.side_by_side(astronaut.pixels, inv.aligned, inv.reconstruction)  # photo | EG3D crop | reconstruction
px.imshow(panels, facet_col=0).update_layout(height=300, width=900).show()

# %% [markdown]
# ## 2 · Every method on toy photos, against exact ground truth
# Toy photos are procedural heads with texture the generator cannot draw (the domain gap of real photos).
# We know their exact image at any view and their exact depth, so each method gets three numbers: image
# error at the input view, at a view turned 0.5 rad, and depth error; plus its time per head.

# %%
scores = I.compare_methods(pipe, heads, REFINE_STEPS, OPT_STEPS)
print(I.table_text(scores))

# %% [markdown]
# **Reading the table.** Refinement and optimisation lower the error at the input view, but watch the
# novel view: fitting one view harder can bend the 3D shape (the paper's motivation for a 3D-aware
# encoder). The toy lab's benchmark over 32 heads is in `benchmarks/results/toy_inversion.md`.
#
# ### Exercise 1 — PSNR
# Metrics papers report PSNR too. Return, for images in [-1, 1] of shape `[N, 3, H, W]`, one PSNR per image
# in dB on the [0, 1] scale: `10 · log10(1 / MSE)`.

# %%
def psnr(a, b):
    raise NotImplementedError  # your code here


I.check_psnr(I.psnr_solution if SHOW_SOLUTIONS else psnr);

# %% [markdown]
# ## 3 · Turn it
# The tri-planes of an inversion are cached, so a new view is one volume render. Pick an input and move
# the sliders.

# %%
toy_inversions = {f"toy head {i}": pipe.invert(heads.pixels[i], align=False) for i in range(len(heads.z))}
choices = {"astronaut": inv, **toy_inversions}
owners = {name: photo_pipe if name == "astronaut" else pipe for name in choices}  # each inversion renders with its own bundle
pick = widgets.Dropdown(options=list(choices), description="input")
yaw = widgets.FloatSlider(value=0.4, min=-0.8, max=0.8, step=0.1, description="yaw")
pitch = widgets.FloatSlider(value=0.0, min=-0.4, max=0.4, step=0.1, description="pitch")
view_out = widgets.Output()


def show_view(_=None) -> None:
    with view_out:
        view_out.clear_output(wait=True)
        px.imshow(I.view(owners[pick.value], choices[pick.value], yaw.value, pitch.value)).update_layout(height=300, width=300).show()


for w in (pick, yaw, pitch):
    w.observe(show_view, names="value")
display(widgets.HBox([pick, yaw, pitch]), view_out)
show_view()

# %% [markdown]
# ### Exercise 2 — from a pose to a camera
# E0's pose head predicts (yaw, pitch); the generator wants EG3D's 25-value camera label: the flattened
# 4×4 camera-to-world matrix of a camera looking at the head from the FFHQ radius, then the flattened 3×3
# normalised intrinsics. Write it (hint: `e3dge.core.cameras` has the building blocks).

# %%
def camera_label(yaw, pitch):
    raise NotImplementedError  # your code here


I.check_camera_label(I.camera_label_solution if SHOW_SOLUTIONS else camera_label);

# %% [markdown]
# ## 4 · An orbit video

# %%
show_video(I.orbit_video(pipe, toy_inversions["toy head 0"], "orbit.mp4", FRAMES))
