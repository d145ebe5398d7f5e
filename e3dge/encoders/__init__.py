"""E3DGE encoders: global E0 + pose head; Stage II: local E1, 2D aligner E_ADA, feature fusion, pixel-aligned lookup."""

from e3dge.encoders.aligner import AlignerConfig, ResidualAligner
from e3dge.encoders.blocks import ResnetBlockFC, apply_film, positional_encoding
from e3dge.encoders.fusion import FeatureFusion, FilmHead
from e3dge.encoders.global_encoder import EncoderOutput, GlobalEncoder, encoder_config, resize_to
from e3dge.encoders.irse import IRSE_DEPTHS, BottleneckIR, SEModule, UnitSpec, stage_units
from e3dge.encoders.local import LocalEncoder, LocalEncoderConfig
from e3dge.encoders.pixel_aligned import Projection, project, sample_features, sample_projected, visibility
from e3dge.encoders.pose import PoseHead, pose_to_label
from e3dge.encoders.styles import GradualStyleBlock, upsample_add
from e3dge.encoders.stylesdf_encoder import StyleSDFEncoderConfig, StyleSDFEncoderOutput, StyleSDFGlobalEncoder
from e3dge.encoders.volume_pose import VolumePoseConfig, VolumePoseEstimator, VolumePoseOutput

__all__ = [
    "EncoderOutput",
    "GlobalEncoder",
    "encoder_config",
    "resize_to",
    "IRSE_DEPTHS",
    "BottleneckIR",
    "SEModule",
    "UnitSpec",
    "stage_units",
    "PoseHead",
    "pose_to_label",
    "GradualStyleBlock",
    "upsample_add",
    "LocalEncoder",
    "LocalEncoderConfig",
    "ResidualAligner",
    "AlignerConfig",
    "FeatureFusion",
    "FilmHead",
    "ResnetBlockFC",
    "apply_film",
    "positional_encoding",
    "Projection",
    "project",
    "sample_features",
    "sample_projected",
    "visibility",
    "StyleSDFGlobalEncoder",
    "StyleSDFEncoderConfig",
    "StyleSDFEncoderOutput",
    "VolumePoseEstimator",
    "VolumePoseConfig",
    "VolumePoseOutput",
]
