"""e3dge.export: meshes against the toy lab's exact SDF, file formats, Plotly figures, and the CLI's --mesh / --plot."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch

from e3dge.core.errors import UserError
from e3dge.export import (
    MESH_FORMATS,
    MeshOptions,
    depth_points,
    depth_surface_figure,
    extract_mesh,
    field_grid,
    mesh_bytes,
    mesh_figure,
    mesh_from_grid,
    point_cloud_figure,
    save_mesh,
    write_html,
)
from e3dge.export.files import linear_to_srgb, srgb_to_linear
from e3dge.inversion import InversionPipeline
from e3dge.toy import HeadFactorMap, sdf_at

trimesh = pytest.importorskip("trimesh")


@pytest.fixture(scope="module")
def pipe() -> InversionPipeline:
    return InversionPipeline.from_pretrained("toy")


@pytest.fixture(scope="module")
def head(pipe):
    """A sampled toy head (its code is known exactly, so its procedural SDF is the ground truth) and its mesh."""
    G = pipe.generator
    fm = HeadFactorMap(G.z_dim)
    z = fm.sample_z(1, 4242)
    inv = pipe.from_latent(G.mapping(z, torch.zeros(1, G.c_dim)), yaw=0.25, pitch=0.05)
    mesh = extract_mesh(pipe, inv, options=MeshOptions(resolution=80))
    return fm.factors(z), inv, mesh


def test_marching_cubes_of_a_sphere_lies_on_the_sphere_with_outward_faces():
    r, half, n = 0.3, 0.5, 48
    axis = np.linspace(-half, half, n)
    x, y, z = np.meshgrid(axis, axis, axis, indexing="ij")
    sigma = 100 * (r - np.sqrt(x**2 + y**2 + z**2))  # density grows inwards, as a generator's
    verts, faces = mesh_from_grid(sigma.astype(np.float32), half, level=0.0)
    radius = np.linalg.norm(verts, axis=1)
    assert np.abs(radius - r).max() < 0.25 * (2 * half / (n - 1))  # within a quarter voxel
    tm = trimesh.Trimesh(verts, faces, process=True)
    assert tm.is_watertight and tm.volume == pytest.approx(
        4 / 3 * np.pi * r**3, rel=0.03
    )  # positive volume: faces wind outwards
    with pytest.raises(UserError, match="outside the field's density range"):
        mesh_from_grid(sigma.astype(np.float32), half, level=1e6)


def test_toy_mesh_lies_on_the_procedural_surface(head):
    factors, _, mesh = head
    sdf = sdf_at(factors, torch.from_numpy(mesh.vertices)[None]).reshape(-1).abs()
    voxel = 1.0 / (80 - 1)
    assert (
        float(sdf.mean()) < 0.5 * voxel and float(sdf.quantile(0.95)) < 1.5 * voxel
    )  # measured: mean 0.004, p95 0.011 (80^3)
    tm = mesh.to_trimesh()
    assert tm.is_watertight and tm.volume > 0 and len(tm.split(only_watertight=False)) == 1
    centre = mesh.vertices.mean(0)
    assert ((mesh.vertices - centre) * mesh.normals).sum(1).__gt__(0).mean() > 0.95  # normals point out
    assert (
        mesh.colors.shape == (len(mesh.vertices), 3) and mesh.colors.dtype == np.uint8 and mesh.colors.std(0).min() > 5
    )


def test_vertex_colours_match_the_render_where_the_vertices_are_seen(pipe, head):
    """Front-facing vertices projected into the full render have the render's colour there."""
    from e3dge.core.cameras import split_label

    _, inv, mesh = head
    view = pipe.render(inv, quality="full")
    cam2world, K = split_label(view.camera)
    world2cam = torch.linalg.inv(cam2world[0]).numpy()
    cam = mesh.vertices @ world2cam[:3, :3].T + world2cam[:3, 3]
    facing = (mesh.normals * -(mesh.vertices - cam2world[0, :3, 3].numpy())).sum(1) > 0.5 * np.linalg.norm(
        mesh.vertices - cam2world[0, :3, 3].numpy(), axis=1
    )
    uv = cam[:, :2] / cam[:, 2:] * K[0, 0, 0].item() + 0.5
    size = view.image.shape[0]
    px = np.clip((uv * size).astype(int), 0, size - 1)
    seen = facing & (
        view.mask[
            np.clip((uv[:, 1] * view.mask.shape[0]).astype(int), 0, view.mask.shape[0] - 1),
            np.clip((uv[:, 0] * view.mask.shape[0]).astype(int), 0, view.mask.shape[0] - 1),
        ]
        > 0.9
    )
    assert seen.sum() > 500
    render_rgb = view.image[px[seen, 1], px[seen, 0]].astype(np.float32)
    err = np.abs(render_rgb - mesh.colors[seen].astype(np.float32)).mean() / 255
    assert err < 0.08, err


def test_an_edit_changes_the_mesh_in_the_edited_factor(pipe, head):
    _, inv, mesh = head
    bigger = extract_mesh(pipe, inv, edits={"head_size": 2.5}, options=MeshOptions(resolution=80))
    smaller = extract_mesh(pipe, inv, edits={"head_size": -2.5}, options=MeshOptions(resolution=80))
    extent = lambda m: np.ptp(m.vertices, axis=0).mean()  # noqa: E731
    assert extent(smaller) < extent(mesh) < extent(bigger)
    assert bigger.info["edits"] == {"head_size": 2.5}


def test_mesh_files_round_trip_with_colours_and_normals(head, tmp_path):
    _, _, mesh = head
    for fmt in MESH_FORMATS:
        path = save_mesh(mesh, tmp_path / f"face.{fmt}")
        back = trimesh.load(path, process=False, force="mesh")
        assert np.allclose(back.vertices, mesh.vertices, atol=1e-6) and np.array_equal(back.faces, mesh.faces), fmt
        colors = np.asarray(back.visual.vertex_colors)[:, :3]
        if fmt == "glb":  # linear light in glTF: back to sRGB within the 8-bit rounding of dark values
            assert (
                np.array_equal(colors, srgb_to_linear(mesh.colors))
                and np.abs(linear_to_srgb(colors).astype(int) - mesh.colors).max() <= 13
            )
        else:
            assert np.array_equal(colors, mesh.colors), fmt
        assert not list(tmp_path.glob(".*.tmp")), "no temporary files left behind"
    assert b"\nvn " in mesh_bytes(mesh, "obj")
    glb = trimesh.load(io.BytesIO(mesh_bytes(mesh, "glb")), file_type="glb", process=False, force="mesh")
    assert np.allclose(np.asarray(glb.vertex_normals), mesh.normals, atol=1e-3)
    with pytest.raises(UserError, match="mesh format must be one of glb, ply, obj"):
        save_mesh(mesh, tmp_path / "face.stl")


def test_srgb_linear_round_trip():
    c = np.arange(256, dtype=np.uint8)[:, None].repeat(3, 1)
    lin = srgb_to_linear(c)
    assert (
        lin[0, 0] == 0 and lin[255, 0] == 255 and abs(int(lin[128, 0]) - 55) <= 1
    )  # sRGB 0.5 is about 21.6 % linear light
    assert (
        np.abs(linear_to_srgb(lin).astype(int) - c).max() <= 13
        and np.abs(linear_to_srgb(lin).astype(int) - c)[100:].max() <= 2
    )


def test_mesh_options_are_checked():
    for bad in (
        dict(resolution=8),
        dict(resolution=4096),
        dict(level=float("nan")),
        dict(half_size=-1.0),
        dict(target_faces=3),
    ):
        with pytest.raises(UserError):
            MeshOptions(**bad)


def test_depth_points_lie_on_the_procedural_surface(pipe, head):
    factors, inv, _ = head
    view = pipe.render(inv, quality="full")
    points, keep = depth_points(view.depth, view.mask, view.camera)
    assert len(points) == int((view.mask > 0.5).sum()) and len(keep) == len(points)
    sdf = sdf_at(factors, torch.from_numpy(points).float()[None]).abs()
    assert float(sdf.mean()) < 0.01  # the camera back-projection is right (a wrong axis or focal lands far off)


def test_figures_have_the_expected_traces(pipe, head, tmp_path):
    _, inv, mesh = head
    view = pipe.render(inv, quality="full")
    surface = depth_surface_figure(view.depth, view.mask, view.image)
    (trace,) = surface.data
    on = int((view.mask > 0.5).sum())
    assert (
        trace.type == "mesh3d" and trace.name == "depth surface" and 0.9 * on < len(trace.x) <= on
    )  # background pixels hidden
    assert len(trace.vertexcolor) == len(trace.x) and len(trace.i) > on  # about two triangles per pixel
    (m,) = mesh_figure(mesh).data
    assert m.type == "mesh3d" and len(m.vertexcolor) == len(mesh.vertices) and len(m.i) == len(mesh.faces)
    (p,) = point_cloud_figure(view.depth, view.mask, view.image, view.camera, max_points=300).data
    assert p.type == "scatter3d" and len(p.x) == 300
    assert surface.layout.scene.aspectmode == "data" and surface.layout.scene.camera.up.y == 1
    page = write_html([surface, mesh_figure(mesh)], tmp_path / "v.html").read_text()
    assert page.count("Plotly.newPlot") == 2 and "plotly.js" in page.lower()  # plotly.js embedded: opens offline
    with pytest.raises(UserError, match="mask is empty"):
        depth_surface_figure(view.depth, np.zeros_like(view.mask), view.image)


def test_field_grid_matches_point_queries(pipe, head):
    _, inv, _ = head
    backbone, ws, planes = pipe.scene_for(inv)
    G = backbone.generator
    grid = field_grid(backbone, ws, planes, 16, 0.5, chunk=1000)  # chunked
    axis = torch.linspace(-0.5, 0.5, 16)
    p = torch.stack([axis[3], axis[7], axis[12]])[None, None]
    direct = G.query_points(None, p, planes=planes).sigma[0, 0, 0].item()
    assert grid[3, 7, 12] == pytest.approx(direct, rel=1e-5, abs=1e-5)


def test_cli_writes_mesh_and_plots(tmp_path, capsys):
    from PIL import Image

    from e3dge.cli import main
    from e3dge.inversion.examples import toy_photo_examples

    Image.fromarray(toy_photo_examples(num=1, seed=99)[0].pixels).save(tmp_path / "a.png")
    args = [
        "--no-align",
        "--views",
        "0",
        "--frames",
        "0",
        "--quiet",
        "--mesh",
        "glb",
        "--mesh-resolution",
        "48",
        "--plot",
        "html",
    ]
    assert main(["invert", str(tmp_path / "a.png"), str(tmp_path / "o"), *args, "--edit", "smile=1.5"]) == 0
    out = tmp_path / "o"
    mesh = trimesh.load(out / "mesh.glb", process=False, force="mesh")
    assert len(mesh.faces) > 1000 and np.asarray(mesh.visual.vertex_colors).shape[0] == len(mesh.vertices)
    assert (out / "view3d.html").read_text().count("Plotly.newPlot") == 3
    info = json.loads((out / "inversion.json").read_text())
    assert (
        info["options"]["mesh"] == "glb"
        and info["options"]["mesh_resolution"] == 48
        and info["edits"] == {"smile": 1.5}
    )
    (tmp_path / "clip.mp4").write_bytes(b"x")
    assert main(["invert", str(tmp_path / "clip.mp4"), str(tmp_path / "v"), "--mesh", "glb"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--mesh apply to photos and folders of photos, not to a video" in err[0]
