"""Fuzzed inputs on the wave-2 surfaces: whatever a file or a request holds, the answer is a result or one clear line."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from e3dge.core.errors import UserError
from e3dge.editing.direction import check_edits
from e3dge.inversion.bundle import parse_bundle_spec
from e3dge.training.checkpoint import CheckpointError
from e3dge.training.loop import STATE_FIELDS, check_state

FUZZ = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
COMPONENT = st.fixed_dictionaries(
    {},
    optional={
        "class": st.sampled_from(["TriPlaneGenerator", "GlobalEncoder", "os.system", ""]) | JSON,
        "subfolder": st.sampled_from(["generator", "../up", "/abs", "a/b", "C:\\\\x", ""]) | JSON,
        "source": st.sampled_from(["eg3d-ffhqrebalanced512-128", "./g", "/etc/g", "g"]) | JSON,
        "repo": st.sampled_from(["owner/name", "../x/y", "a/b/c", ".hidden/x"]) | JSON,
        "revision": JSON,
    },
)
SPEC = st.fixed_dictionaries(
    {},
    optional={
        "_class_name": st.sampled_from(["InversionPipeline", "Other"]) | JSON,
        "format": st.integers(0, 3) | JSON,
        "components": st.dictionaries(
            st.sampled_from(["generator", "encoder", "fusion", "evil"]), COMPONENT, max_size=3
        )
        | JSON,
        "aligner": JSON,
        "directions": st.sampled_from(["directions", "../d", "/d"]) | JSON,
        "needs": JSON,
        "description": JSON,
    },
)


@FUZZ
@given(SPEC)
def test_any_pipeline_json_parses_or_is_one_bundle_error_and_never_points_outside(data):
    try:
        spec = parse_bundle_spec(data, "pipeline.json")
    except UserError as err:
        assert "\n" not in str(err) and str(err).startswith("pipeline.json")
        return
    for comp in spec.components.values():
        for ref in (comp.subfolder, comp.repo, comp.source):
            assert ref is None or not (ref.startswith(("/", ".", "~")) or ".." in ref or "\\" in ref)
        assert comp.source in (None, "eg3d-ffhqrebalanced512-128")
        assert comp.repo is None or comp.repo.count("/") == 1


@FUZZ
@given(st.dictionaries(st.sampled_from(sorted(STATE_FIELDS) + ["other"]), JSON, max_size=7))
def test_any_checkpoint_state_is_accepted_only_with_the_right_types(state):
    try:
        check_state("run/checkpoint.safetensors", state)
    except CheckpointError as err:
        assert str(err).startswith("run/checkpoint.safetensors: damaged checkpoint") and "\n" not in str(err)
        return
    for name, types in STATE_FIELDS.items():
        assert isinstance(state[name], types) and not isinstance(state[name], bool)


@FUZZ
@given(st.dictionaries(st.text(max_size=6), JSON | st.floats(), max_size=4))
def test_any_edit_mapping_is_finite_numbers_or_one_line(edits):
    try:
        out = check_edits(edits)
    except UserError as err:
        assert "\n" not in str(err)
        return
    assert all(math.isfinite(v) and abs(v) <= 10 for v in out.values())


@pytest.mark.parametrize("depth", [10, 1000, 100_000])
def test_nesting_at_any_depth_is_handled(tmp_path, depth):
    from e3dge.inversion.bundle import BundleError, read_bundle_spec

    path = tmp_path / "pipeline.json"
    path.write_text(
        json.dumps({"components": {"generator": {"class": "TriPlaneGenerator", "subfolder": "g"}}})[:-1]
        + ', "needs": '
        + "[" * depth
        + "]" * depth
        + "}"
    )
    try:
        read_bundle_spec(path)
    except BundleError as err:
        assert "\n" not in str(err)
