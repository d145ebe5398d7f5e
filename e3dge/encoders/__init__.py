"""E3DGE encoders: global E0 + pose head, local E1, 2D aligner E_ADA, FiLM fusion (issue 4 onwards)."""
