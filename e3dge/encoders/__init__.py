"""E3DGE encoders: global E0 + pose head (local E1, 2D aligner E_ADA and FiLM fusion follow in issue 4+)."""

from e3dge.encoders.global_encoder import EncoderOutput, GlobalEncoder, encoder_config, resize_to
from e3dge.encoders.irse import IRSE_DEPTHS, BottleneckIR, SEModule, UnitSpec, stage_units
from e3dge.encoders.pose import PoseHead, pose_to_label
from e3dge.encoders.styles import GradualStyleBlock, upsample_add

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
]
