# ---
# jupyter:
#   accelerator: GPU
#   colab:
#     provenance: []
#   e3dge:
#     ci_parameters:
#       MAX_POINTS: 1500
#       MESH_RESOLUTION: 32
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
# # 04 · A face in 3D: depth, point clouds and meshes in Plotly
# <a href="https://colab.research.google.com/github/e3dge/e3dge/blob/main/notebooks/04_3d_depth_plotly.ipynb"><img src="https://colab.research.google.com/assets/colab-badge.svg" alt="Open In Colab"/></a>
#
# A 3D-aware GAN renders more than a picture: every pixel's ray stops at a surface, so each view comes
# with a **depth map** (here: the expected distance along the ray, world units) and the generator's
# density field can be turned into a **mesh**. You will look at an inverted face as a depth surface, a
# point cloud and a mesh, then see what an edit does to the geometry. Figures are interactive: drag to turn.

# %%
# Setup: installs e3dge in Colab (a no-op where it is installed); picks the GPU when there is one.
import importlib.util, subprocess, sys

if importlib.util.find_spec("e3dge") is None:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "e3dge[notebooks] @ git+https://github.com/e3dge/e3dge"], check=True)
from e3dge.tutorials import detect_runtime

rt = detect_runtime()
print(rt)

# %% tags=["parameters"]
MESH_RESOLUTION = None  # marching-cubes grid per side; None: 192 on a GPU, 96 on a CPU
MAX_POINTS = None  # points per point-cloud figure; None: 20000 on a GPU, 6000 on a CPU
SHOW_SOLUTIONS = False  # True: use the reference solutions of the exercises

# %%
import ipywidgets as widgets
from IPython.display import display

from e3dge.export.mesh import MeshOptions, extract_mesh
from e3dge.export.plots import depth_surface_figure, mesh_figure
from e3dge.inversion import InversionPipeline
from e3dge.inversion.examples import toy_photo_examples
from e3dge.tutorials import depth3d as D

MESH_RESOLUTION = MESH_RESOLUTION or (96 if rt.small else 192)
MAX_POINTS = MAX_POINTS or (6000 if rt.small else 20000)
pipe = InversionPipeline.from_pretrained("toy", device=rt.device)
examples = toy_photo_examples(3)
inv = pipe.invert(examples[0].pixels, align=False)
front = pipe.render(inv, yaw=0.0, pitch=0.0, quality="full")

# %% [markdown]
# ## 1 · Depth as a surface
# The depth map drawn as a height field over the image plane, coloured by the rendered image.

# %%
depth_surface_figure(front.depth, front.mask, front.image, title="depth surface (nearer = higher)").show()

# %% [markdown]
# ## 2 · A point cloud: back-projecting the depth
# Each pixel has a ray (origin and unit direction, from the camera label); the surface point is
# `origin + depth · direction`. Turn the camera with the sliders: the cloud is always the part of the
# head that view sees.

# %%
yaw = widgets.FloatSlider(value=0.3, min=-0.8, max=0.8, step=0.1, description="yaw")
pitch = widgets.FloatSlider(value=0.0, min=-0.4, max=0.4, step=0.1, description="pitch")
cloud_out = widgets.Output()


def show_cloud(_=None) -> None:
    render = pipe.render(inv, yaw=yaw.value, pitch=pitch.value, quality="full")
    with cloud_out:
        cloud_out.clear_output(wait=True)
        D.points_figure(render, f"seen from yaw {yaw.value:+.1f}, pitch {pitch.value:+.1f}", MAX_POINTS).show()


for w in (yaw, pitch):
    w.observe(show_cloud, names="value")
display(widgets.HBox([yaw, pitch]), cloud_out)
show_cloud()

# %% [markdown]
# ### Exercise 1 — back-projection
# Given the depth map `[r, r]` and each pixel's ray `origins [r*r, 3]` and unit `directions [r*r, 3]`,
# return the world points `[r*r, 3]`.

# %%
def back_project(depth, origins, directions):
    raise NotImplementedError  # your code here


D.check_back_project(D.back_project_solution if SHOW_SOLUTIONS else back_project, front);

# %% [markdown]
# ## 3 · The whole head as a mesh
# Marching cubes on the generator's density over a grid (`MESH_RESOLUTION` per side), coloured by the
# generator's colour at each vertex: the geometry of every view at once (what `e3dge invert --mesh glb` writes).

# %%
mesh = extract_mesh(pipe, inv, options=MeshOptions(resolution=MESH_RESOLUTION))
print(f"{len(mesh.vertices)} vertices, {len(mesh.faces)} faces")
mesh_figure(mesh, title=f"mesh ({MESH_RESOLUTION}³ grid)").show()

# %% [markdown]
# ## 4 · What an edit does to the geometry
# Edits move the latent code; the density moves with it. A head-size or smile edit should move the
# surface; a colour edit (hair colour, skin tone) ideally leaves it in place — in the toy model the
# directions are fitted by a linear SVM and are not perfectly disentangled, so look how much they do.

# %%
changes = {attr: D.depth_change(pipe, inv, attr, 2.0) for attr in ("head_size", "smile", "hair_colour", "skin_tone")}
for attr, ch in changes.items():
    print(f"{attr:12s} moves {100 * ch.moved_fraction:5.1f} % of the face by more than {ch.threshold} (max |Δ| {abs(ch.difference[ch.difference == ch.difference]).max():.3f})")
D.before_after_figure(changes["head_size"], MAX_POINTS // 2).show()
D.difference_figure(changes["head_size"]).show()

# %% [markdown]
# ### Exercise 2 — how much of the face does an edit move?
# Given the depth maps and masks before and after an edit, return the share (0-1) of the pixels opaque
# (mask > 0.5) in **both** renders whose depth changed by more than `threshold`.

# %%
def moved_fraction(before, after, mask_before, mask_after, threshold):
    raise NotImplementedError  # your code here


D.check_moved_fraction(D.moved_fraction_solution if SHOW_SOLUTIONS else moved_fraction, changes["head_size"]);
