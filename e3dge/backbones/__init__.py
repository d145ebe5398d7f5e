"""3D GAN backbones behind one protocol: EG3D (tri-planes) and StyleSDF (SDF), in plain PyTorch."""

from e3dge.backbones.eg3d.network import PRETRAINED_EG3D, TriPlaneGenerator, eg3d_config, load_official_pkl
from e3dge.backbones.output import GeneratorOutput, PointQuery

__all__ = ["TriPlaneGenerator", "eg3d_config", "load_official_pkl", "PRETRAINED_EG3D", "GeneratorOutput", "PointQuery"]
