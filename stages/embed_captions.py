"""Stage embed_captions: the text embeddings (projected, unnormalised) of every caption of a caption dataset's
subset, for one model, each caption first put in ``retrieval.template`` (null: as given). The images' embeddings
come from extract (``extract_captions@<model>-<captions>``), so a prompt sweep reruns this stage and retrieval, never
the image encoding. Captions are padded as the family was trained (CLIP to the batch's longest, SigLIP to its full
length) and cut to the model's text positions. ``--out`` is a features file whose labels are each caption's image.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm import tqdm

from clip_study.data.captions import prompted_captions, read_captions
from clip_study.data.features import save_features
from clip_study.models.encoding import encode_texts
from clip_study.models.loading import load_model, load_tokenizer, pick_device
from clip_study.pipeline.params import for_param, load_params, model_entry, named_entry, section
from clip_study.pipeline.sections.captions import CAPTIONS
from clip_study.pipeline.sections.model import MODEL
from clip_study.pipeline.sections.models import MODELS
from clip_study.pipeline.sections.retrieval import RETRIEVAL
from clip_study.pipeline.stage import REQUIRED, parse_args, rebuild, run


def main(argv: list[str] | None = None) -> None:
    args = parse_args(__doc__, {"subset": REQUIRED, "out": REQUIRED}, argv, per_model=True, per_caption_set=True)
    params = load_params(args.params, MODELS, CAPTIONS, MODEL, RETRIEVAL)
    short, checkpoint, family = model_entry(params, args.model)
    caption_set, _ = named_entry(params, "captions", args.captions)
    settings = section(params, "retrieval")
    texts, text_image = prompted_captions(read_captions(args.subset, fix=rebuild("fetch_captions")),
                                          settings["template"])
    with for_param("model.device"):
        device = pick_device(str(section(params, "model")["device"]))
    with for_param(f"models.{short}.name"):
        model = load_model(checkpoint, device, family)
        tokenizer = load_tokenizer(checkpoint, model)
    batch = settings["batch_size"]
    features = np.concatenate([encode_texts(model, tokenizer, texts[start:start + batch], batch)
                               for start in tqdm(range(0, len(texts), batch), desc=f"captions of {caption_set}",
                                                 unit="batch")])
    save_features(Path(args.out), features, text_image)
    print(f"embed_captions {short} on {caption_set}: {len(texts)} captions of {int(text_image.max()) + 1} images, "
          f"dimension {features.shape[1]} -> {args.out}")


if __name__ == "__main__":
    run(main)
