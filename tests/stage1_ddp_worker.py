"""Worker for tests/test_stage1.py: a few Stage I steps under torch.distributed.run, then each rank writes its parameter digest."""

import hashlib
import sys

import torch

torch.set_num_threads(1)
from e3dge.training.config import load_stage1_config
from e3dge.training.stage1 import Stage1Trainer

out = sys.argv[1]
cfg = load_stage1_config("tiny-test", {"out_dir": out, "steps": 3})
tr = Stage1Trainer(cfg)
E = tr.fit(progress=False)
flat = torch.cat([p.detach().flatten() for p in E.parameters()])
open(f"{out}/params_rank{tr.acc.process_index}.txt", "w").write(
    f"{tr.acc.num_processes} {tr.acc.distributed_type} {flat.double().sum().item():.12e} {hashlib.sha256(flat.numpy().tobytes()).hexdigest()}"
)
