"""Stage pretrain (demo only): train a small CLIP from scratch on the generated captioned shapes.

--family hf_clip trains a CLIPModel with CLIP's contrastive softmax loss; hf_siglip trains a SiglipModel of the
same sizes on the same captions with SigLIP's pairwise sigmoid loss (demo/dvc.yaml passes each model's family,
and its checkpoint directory as --out).

The result is an ordinary checkpoint directory (model, tokenizer, image processor) that the
pipeline's stages load by path, like any hub model. Training runs a fixed number of steps (not a
wall-time budget) with seeded initialisation and batches, so the same params give the same model.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import torch

from clip_study.demo import tinyclip
from clip_study.demo.pretraining import preprocess_pixels, pretrain, tokenize, tokenize_for_last_position
from clip_study.demo.shapes import load_pretraining_set
from clip_study.errors import UserError
from clip_study.files import write_json
from clip_study.models.families import FAMILIES
from clip_study.pipeline.params import for_param, load_params, section
from clip_study.pipeline.sections.pretrain import PRETRAIN
from clip_study.pipeline.stage import REQUIRED, parse_args, rebuild, run


def main(argv: list[str] | None = None) -> None:
    args = parse_args(__doc__, {"pretrain": "data/pretrain.npz", "out": REQUIRED, "family": REQUIRED}, argv)
    small, family = tinyclip.small_model(args.family), FAMILIES.get(args.family)
    # ranges, and widths divisible by heads, checked by load_params; the patch size needs the images
    params = section(load_params(args.params, PRETRAIN), "pretrain")
    seed, steps, batch_size, warmup = (params[key] for key in ("seed", "steps", "batch_size", "warmup_steps"))
    lr, weight_decay = float(params["lr"]), float(params["weight_decay"])
    sizes = {key: params[key] for key in ("vision_hidden", "vision_layers", "patch_size", "text_hidden",
                                          "text_layers", "heads", "projection_dim", "max_text_length")}

    images, captions = load_pretraining_set(Path(args.pretrain), fix=rebuild("generate"))
    image_size = images.shape[1]
    if image_size % sizes["patch_size"]:
        raise UserError(f"pretrain.patch_size: {sizes['patch_size']} must divide the image size {image_size} "
                        "(generate.image_size)")
    tokenizer = tinyclip.train_tokenizer(captions, params["vocab_size"])
    processor = small.image_processor(image_size)
    position_ids = None
    with for_param("pretrain.max_text_length"):
        if family.pad_texts_to_max_length:  # SigLIP: the last of max_text_length positions, in a few positions
            input_ids, attention_mask, position_ids = tokenize_for_last_position(tokenizer, captions,
                                                                                 sizes["max_text_length"])
        else:
            input_ids, attention_mask = tokenize(tokenizer, captions, sizes["max_text_length"])
    pixels = preprocess_pixels(images, processor)
    del images
    torch.manual_seed(seed)  # the initial weights
    model = small.model(tokenizer, image_size=image_size, **sizes)
    print(f"pretrain: {args.family}, {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters, "
          f"{len(tokenizer)} tokens, {len(pixels)} images, {steps} steps of {batch_size}")

    start = time.perf_counter()
    with for_param("pretrain.batch_size"):
        log = pretrain(model, pixels, input_ids, attention_mask, steps=steps, batch_size=batch_size, lr=lr,
                       warmup_steps=warmup, weight_decay=weight_decay, seed=seed, position_ids=position_ids)
    seconds = time.perf_counter() - start

    out = Path(args.out)
    if out.exists():  # replaced, so the directory holds exactly this checkpoint
        shutil.rmtree(out)
    tinyclip.save_checkpoint(out, model, tokenizer, processor)
    write_json(out / "training_log.json", log)
    print(f"pretrain: final loss {log[-1]['loss']:.4f} after {seconds:.0f} s -> {out}")


if __name__ == "__main__":
    run(main)
