"""3D GAN backbones: EG3D (tri-planes) in plain PyTorch."""

from e3dge.backbones.eg3d import PRETRAINED_EG3D, TriPlaneGenerator, eg3d_config, load_official_pkl
from e3dge.backbones.output import GeneratorOutput, PointQuery

__all__ = ["TriPlaneGenerator", "eg3d_config", "load_official_pkl", "PRETRAINED_EG3D", "GeneratorOutput", "PointQuery"]
