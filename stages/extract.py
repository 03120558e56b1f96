"""Stage extract: CLIP image embeddings (projected, unnormalised) of the train and test images."""

from __future__ import annotations

from pathlib import Path

from stages import clip, data
from stages.config import integer, load_params, parse_args, run, section


def main() -> None:
    args = parse_args(__doc__, {"subset": "data/subset", "out": "data/features"})
    params = load_params(args.params)
    model_params, batch_size = section(params, "model"), integer(section(params, "extract"), "extract", "batch_size")
    device = clip.pick_device(str(model_params.get("device", "auto")))
    model = clip.load_model(str(model_params["name"]), device)
    processor = clip.load_image_processor(str(model_params["name"]))
    out = Path(args.out)
    for split in ("train", "test"):
        paths, labels = data.read_split(args.subset, split)
        features = clip.encode_images(model, processor, paths, batch_size, desc=f"extract {split}")
        data.save_features(out / f"{split}.npz", features, labels)
    print(f"extract: features of dimension {model.config.projection_dim} on {device} -> {out}")


if __name__ == "__main__":
    run(main)
