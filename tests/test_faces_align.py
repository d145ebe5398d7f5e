"""Detection, landmarks, FFHQ / EG3D alignment and paste-back on scikit-image's astronaut photo."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("dlib")
skdata = pytest.importorskip("skimage.data")

from e3dge.faces import (  # noqa: E402
    FaceIndexError,
    FaceTooSmallError,
    NoFaceError,
    align_face,
    detect_faces,
    eye_centers,
    paste_back,
    warp_image,
)
from e3dge.faces.align import BFM_LM3D_5, ffhq_quad, pos_fit  # noqa: E402


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return np.ascontiguousarray(skdata.astronaut())


@pytest.fixture(scope="module")
def eg3d(astronaut):
    return align_face(astronaut, "eg3d")


@pytest.fixture(scope="module")
def ffhq(astronaut):
    return align_face(astronaut, "ffhq", size=512)


def test_exactly_one_face(astronaut):
    faces = detect_faces(astronaut)
    assert len(faces) == 1
    face = faces[0]
    assert face.landmarks68.shape == (68, 2) and face.landmarks5.shape == (5, 2)
    assert 80 <= face.size <= 130  # the face is about 100 px in this 512 px photo
    assert 150 <= face.center[0] <= 260 and 80 <= face.center[1] <= 200


def test_landmarks_in_anatomical_order(eg3d):
    lm = eg3d.face.landmarks68
    assert np.all(np.diff(lm[0:17, 0]) >= 0) and lm[16, 0] - lm[0, 0] > 60  # jaw runs image-left to image-right
    assert lm[8, 1] == lm[:, 1].max()  # chin is the lowest point
    assert lm[17:22, 1].mean() < lm[36:42, 1].min() and lm[22:27, 1].mean() < lm[42:48, 1].min()  # brows above eyes
    assert lm[17:22, 0].mean() < lm[22:27, 0].mean()  # image-left brow first
    assert np.all(np.diff(lm[27:31, 1]) > 0)  # nose bridge goes down to the tip
    left_eye, right_eye = eye_centers(lm)
    assert left_eye[0] < lm[30, 0] < right_eye[0]  # nose tip between the eyes
    assert max(left_eye[1], right_eye[1]) < lm[30, 1] < lm[48:60, 1].min()  # eyes, nose tip, mouth
    assert lm[48, 0] < lm[51, 0] < lm[54, 0] and lm[51, 1] < lm[57, 1]  # mouth corners, upper/lower lip
    assert np.all(lm[36:42, 0] < lm[42:48, 0].min())  # the eyes do not overlap


@pytest.mark.parametrize("name", ["eg3d", "ffhq"])
def test_aligned_eyes_where_the_convention_puts_them(name, eg3d, ffhq):
    """Eyes re-detected in the crop lie within 2 px of where the convention maps the photo's eyes."""
    result = eg3d if name == "eg3d" else ffhq
    assert result.image.shape == (512, 512, 3) and result.image.dtype == np.uint8
    expected = result.transform.apply(result.face.eyes)
    faces = detect_faces(result.image)
    assert len(faces) == 1
    err = np.abs(faces[0].eyes - expected).max()
    assert err <= 2.0, f"{name}: aligned eyes off by {err:.2f} px"


def _eg3d_reference(image: np.ndarray, lm5: np.ndarray) -> np.ndarray:
    """EG3D's crop done literally with Pillow: align_img(1024, 300), centre crop 700, resize 512."""
    h0, w0 = image.shape[:2]
    t, pos_scale = pos_fit(np.stack((lm5[:, 0], h0 - 1 - lm5[:, 1]), 1), BFM_LM3D_5)
    s = 300.0 / pos_scale
    w, h = int(w0 * s), int(h0 * s)
    left, up = int(w / 2 - 512 + (t[0] - w0 / 2) * s), int(h / 2 - 512 + (h0 / 2 - t[1]) * s)
    img = Image.fromarray(image).resize((w, h), Image.BICUBIC).crop((left, up, left + 1024, up + 1024))
    return np.asarray(img.crop((162, 162, 862, 862)).resize((512, 512), Image.LANCZOS))


def test_eg3d_crop_matches_eg3d_preprocessing(astronaut, eg3d):
    ref = _eg3d_reference(astronaut, eg3d.face.landmarks5).astype(float)
    diff = np.abs(ref - eg3d.image.astype(float))[8:-8, 8:-8].mean()
    shifted = np.abs(np.roll(ref, 1, axis=1) - eg3d.image.astype(float))[8:-8, 8:-8].mean()
    assert diff < 2.0, f"mean abs difference {diff:.2f} levels"
    assert diff < 0.6 * shifted  # a one-pixel misalignment would be clearly worse
    assert eg3d.transform.rotation_degrees == 0.0  # EG3D keeps roll in the image


def test_ffhq_quad_fills_the_output(ffhq):
    c, x, y = ffhq_quad(ffhq.face.landmarks68)
    corners = ffhq.transform.apply(np.stack((c - x - y, c - x + y, c + x + y, c + x - y)))
    np.testing.assert_allclose(corners, [[-0.5, -0.5], [-0.5, 511.5], [511.5, 511.5], [511.5, -0.5]], atol=1e-6)
    # FFHQ levels the eyes: the eye line is within 1 degree of horizontal after alignment
    eyes = ffhq.transform.apply(ffhq.face.eyes)
    assert abs(np.degrees(np.arctan2(*(eyes[1] - eyes[0])[::-1]))) < 1.0


def test_near_frontal_pose_and_label(eg3d, ffhq):
    for result in (eg3d, ffhq):
        yaw, pitch, roll = result.pose.degrees
        assert abs(yaw) < 10 and abs(pitch) < 15 and abs(roll) < 10, result.pose.degrees
        label = result.label
        assert label.shape == (1, 25)
        assert abs(float(label[0, [3, 7, 11]].norm()) - 2.7) < 1e-4  # camera on the radius-2.7 sphere
        np.testing.assert_allclose(label[0, 16:].numpy(), [4.2647, 0, 0.5, 0, 4.2647, 0.5, 0, 0, 1], atol=1e-6)
    assert abs(ffhq.pose.degrees[2]) < 2.0  # FFHQ turns the photo so the face is level: little roll left


def test_roll_and_mirror_follow_the_photo(astronaut, eg3d):
    rotated = np.asarray(Image.fromarray(astronaut).rotate(12, resample=Image.BICUBIC, center=(222, 125)))
    roll_gain = align_face(rotated).pose.degrees[2] - eg3d.pose.degrees[2]
    assert abs(roll_gain - 12) < 2.0  # positive roll = face turned counter-clockwise on screen
    mirrored = align_face(np.ascontiguousarray(astronaut[:, ::-1])).pose.degrees
    assert abs(mirrored[0] + eg3d.pose.degrees[0]) < 1.5  # yaw changes sign
    assert abs(mirrored[2] + eg3d.pose.degrees[2]) < 1.5  # so does roll
    assert abs(mirrored[1] - eg3d.pose.degrees[1]) < 1.5  # pitch does not


def test_paste_back_restores_the_photo(astronaut, eg3d):
    restored = paste_back(astronaut, eg3d.image, eg3d.transform)
    assert restored.shape == astronaut.shape
    x0, y0 = eg3d.face.landmarks68.min(0).astype(int)
    x1, y1 = eg3d.face.landmarks68.max(0).astype(int)
    err = np.abs(restored[y0:y1, x0:x1].astype(float) - astronaut[y0:y1, x0:x1]).mean()
    assert err < 3.0
    red = np.zeros_like(eg3d.image)
    red[..., 0] = 255
    painted = paste_back(astronaut, red, eg3d.transform)
    cx, cy = eg3d.face.center.astype(int)
    np.testing.assert_array_equal(painted[cy, cx], [255, 0, 0])
    np.testing.assert_array_equal(painted[-1, -1], astronaut[-1, -1])  # far from the face: untouched


def _two_faces(astronaut: np.ndarray) -> np.ndarray:
    face = Image.fromarray(astronaut).crop((120, 20, 320, 240))
    canvas = Image.new("RGB", (640, 360), (128, 128, 128))
    canvas.paste(face, (360, 70))  # full size, right of centre
    canvas.paste(face.resize((150, 165)), (40, 100))  # smaller, left
    return np.asarray(canvas)


def test_several_faces_choose_and_report(astronaut):
    photo = _two_faces(astronaut)
    result = align_face(photo)
    assert len(result.faces) == 2 and result.index == 0
    assert result.face.size > result.faces[1].size
    assert any("2 faces found" in n and "--face-index" in n for n in result.notes)
    other = align_face(photo, face_index=1)
    assert other.face.center[0] < result.face.center[0]
    with pytest.raises(FaceIndexError, match="face index 5 does not exist: .* has 2 face"):
        align_face(photo, face_index=5)


def test_no_face():
    with pytest.raises(NoFaceError, match=r"no face found in .*at least 64 px"):
        align_face(np.asarray(skdata.coffee()))


def test_face_smaller_than_64px(astronaut):
    small = np.asarray(Image.fromarray(astronaut).resize((256, 256), Image.LANCZOS))
    with pytest.raises(FaceTooSmallError, match=r"is \d+ px, smaller than 64 px"):
        align_face(small)


def test_warp_pads_outside_the_photo(astronaut, eg3d):
    from e3dge.faces.align import AlignTransform

    shifted = AlignTransform(eg3d.transform.matrix @ np.array([[1, 0, 600], [0, 1, 0], [0, 0, 1.0]]), 64, "eg3d")
    assert warp_image(astronaut, shifted, pad="black").max() == 0  # entirely outside: black


def test_exif_rotated_photo_gives_the_same_face(tmp_path, astronaut, eg3d):
    stored = Image.fromarray(astronaut).transpose(Image.Transpose.ROTATE_270)  # camera held sideways
    exif = Image.Exif()
    exif[0x0112] = 8  # "rotate 90 counter-clockwise to display"
    path = tmp_path / "sideways.png"
    stored.save(path, exif=exif)
    result = align_face(path)
    assert result.source.exif_rotated and any("EXIF" in n for n in result.notes)
    np.testing.assert_allclose(result.face.eyes, eg3d.face.eyes, atol=1.0)
