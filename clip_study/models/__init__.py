"""Models: loading a CLIP checkpoint, the precision it computes in, image preprocessing, and encoding
images and texts into embeddings."""
