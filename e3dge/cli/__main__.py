"""``python -m e3dge.cli ...`` (what ``accelerate launch -m e3dge.cli`` runs)."""

import sys

from e3dge.cli.main import main

sys.exit(main())
