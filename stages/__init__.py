"""The CLIP study pipeline: one module per DVC stage plus shared modules (config, hub, data, clip,
classify, metrics)."""
