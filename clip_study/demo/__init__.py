"""The offline demo: generated coloured shapes with captions, a small CLIP built and pretrained here, and
the held-out combinations that test compositional zero-shot."""
