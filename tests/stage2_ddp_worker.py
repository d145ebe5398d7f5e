"""Worker for tests/test_stage2.py: a few Stage II steps (with the discriminator) under torch.distributed.run; each rank writes its parameter digest."""

import hashlib
import sys

import torch

torch.set_num_threads(1)
from e3dge.training.stage2 import Stage2Trainer, load_stage2_config

out = sys.argv[1]
tr = Stage2Trainer(load_stage2_config("tiny-test", {"out_dir": out, "steps": 3, "stage21_steps": 1, "r1_every": 1}))
branch = tr.fit(progress=False)
flat = torch.cat([p.detach().flatten() for p in [*branch.parameters(), *tr.D.parameters()]])
open(f"{out}/params_rank{tr.acc.process_index}.txt", "w").write(
    f"{tr.acc.num_processes} {tr.acc.distributed_type} {flat.double().sum().item():.12e} {hashlib.sha256(flat.numpy().tobytes()).hexdigest()}"
)
