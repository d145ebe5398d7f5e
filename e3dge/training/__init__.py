"""Self-supervised training stages of E3DGE (loop functions + loss objects)."""
