"""Small CLIP and SigLIP checkpoints built here: a BPE tokenizer trained on our own texts, a small
``CLIPConfig`` or ``SiglipConfig``, and an image processor, saved as an ordinary local model directory.

The offline demo pretrains them; the tests use random ones. Either loads with
``from_pretrained(directory)`` like any hub checkpoint.
"""

from __future__ import annotations

import json
import logging
import math
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

import torch
from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers
import transformers
from transformers import CLIPConfig, CLIPModel, CLIPTokenizer, SiglipConfig, SiglipModel

from clip_study.errors import UserError

BOS, EOS = "<|startoftext|>", "<|endoftext|>"
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
# CLIP's own pre-tokenisation: words, single digits, runs of punctuation; then bytes as characters.
# transformers 5.x names the torchvision-free processor CLIPImageProcessorPil; 4.x has only the PIL one.
CLIPImageProcessor = (transformers.CLIPImageProcessorPil if hasattr(transformers, "CLIPImageProcessorPil")
                      else transformers.CLIPImageProcessor)
# likewise SiglipImageProcessorPil (5.x) and SiglipImageProcessor (4.x: PIL only)
SiglipImageProcessor = (transformers.SiglipImageProcessorPil if hasattr(transformers, "SiglipImageProcessorPil")
                        else transformers.SiglipImageProcessor)
SIGLIP_MEAN = SIGLIP_STD = [0.5, 0.5, 0.5]
# SigLIP's text positions: transformers' zero-shot pipeline pads SigLIP prompts to 64 tokens whatever the model
SIGLIP_TEXT_LENGTH = 64
# Initial temperature and bias: the SigLIP paper's bias -10 (most pairs in a batch are negatives) with CLIP's
# initial temperature exp(scale) = 1/0.07, where both small models start. Measured on the demo (700 steps of 128,
# zero-shot top-1 of "a photo of a {}" on 1,960 of its images): 0.49 with these, 0.40 with the paper's scale
# log 10 (meant for long runs at 32k batches), 0.38 with a bias of -log 127 (a batch's prior log-odds).
SIGLIP_LOGIT_SCALE, SIGLIP_LOGIT_BIAS = math.log(1 / 0.07), -10.0
CLIP_SPLIT = r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""


def train_tokenizer(texts: Iterable[str], vocab_size: int) -> CLIPTokenizer:
    """A byte-level BPE in CLIP's format (``</w>`` ends a word), trained on ``texts``.

    Every byte appears with and without ``</w>``, so no text ever maps to the unknown token
    (which is CLIP's end-of-text token: it would end the text where pooling reads it).
    """
    bpe = Tokenizer(models.BPE(end_of_word_suffix="</w>"))
    bpe.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Lowercase()])
    bpe.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(CLIP_SPLIT), behavior="removed", invert=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False),
    ])
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator(texts, trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=[BOS, EOS], initial_alphabet=alphabet,
        end_of_word_suffix="</w>", show_progress=False))
    with tempfile.TemporaryDirectory() as folder:
        vocab_file, merges_file = bpe.model.save(folder)
        merges = [line.split(" ") for line in Path(merges_file).read_text().splitlines()
                  if line and not line.startswith("#version")]
        # Ids in a fixed order (specials, bytes, bytes</w>, merges, as in CLIP's own vocabulary): the
        # trainer numbers the </w> tokens in hash-map order, different on every run
        # (huggingface/tokenizers#1794), and with it the initial weights of every embedding row.
        order = [BOS, EOS] + alphabet + [c + "</w>" for c in alphabet] + [a + b for a, b in merges]
        vocab = {token: i for i, token in enumerate(dict.fromkeys(order))}
        Path(vocab_file).write_text(json.dumps(vocab))
        # file paths work in transformers 4.x and 5.x alike
        return CLIPTokenizer(vocab_file, merges_file, model_max_length=77)


def text_ids(tokenizer: CLIPTokenizer) -> dict[str, int]:
    """The text config's vocabulary size and special-token ids, the tokenizer's own. A text config defaults to
    the real model's (CLIP: 49408 tokens, eos 49407; SigLIP: 32000, eos 49407), far outside a small vocabulary."""
    return {"vocab_size": len(tokenizer), "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id, "pad_token_id": tokenizer.pad_token_id}


def small_clip_config(tokenizer: CLIPTokenizer, image_size: int = 32, patch_size: int = 8,
                      vision_hidden: int = 32, vision_layers: int = 2, text_hidden: int = 32,
                      text_layers: int = 2, heads: int = 2, projection_dim: int = 16,
                      max_text_length: int = 32) -> CLIPConfig:
    """A small CLIP architecture whose special-token ids match ``tokenizer``'s.

    The text config defaults to CLIP's ids (eos 49407) and pools the first eos position: with a
    small vocabulary the ids must be the tokenizer's or every text pools token 0.
    """
    return CLIPConfig(
        text_config={"hidden_size": text_hidden, "intermediate_size": 4 * text_hidden,
                     "num_hidden_layers": text_layers, "num_attention_heads": heads,
                     "max_position_embeddings": max_text_length, **text_ids(tokenizer)},
        vision_config={"hidden_size": vision_hidden, "intermediate_size": 4 * vision_hidden,
                       "num_hidden_layers": vision_layers, "num_attention_heads": heads,
                       "image_size": image_size, "patch_size": patch_size},
        projection_dim=projection_dim)


def image_processor(image_size: int) -> CLIPImageProcessor:
    """CLIP's preprocessing (resize shortest edge, centre crop, CLIP mean/std) at ``image_size``."""
    return CLIPImageProcessor(size={"shortest_edge": image_size},
                              crop_size={"height": image_size, "width": image_size},
                              image_mean=CLIP_MEAN, image_std=CLIP_STD)


def random_small_clip(texts: Iterable[str], seed: int = 0, vocab_size: int = 300,
                      **config: int) -> tuple[CLIPModel, CLIPTokenizer, CLIPImageProcessor]:
    """A randomly initialised small CLIP with a tokenizer trained on ``texts``."""
    tokenizer = train_tokenizer(texts, vocab_size)
    cfg = small_clip_config(tokenizer, **config)
    torch.manual_seed(seed)
    return CLIPModel(cfg).eval(), tokenizer, image_processor(cfg.vision_config.image_size)


# transformers 5.x warns about a special-token id outside the vocabulary of any config it builds. Saving builds a
# default text config to write only what differs from it, and SiglipTextConfig's defaults fail that check
# (vocabulary 32,000, CLIP's bos/eos 49406/49407; transformers issue #47612): a warning about no config of
# ours, naming the default's vocabulary, never the model's.
TOKEN_ID_WARNING = re.compile(r"Model config: \w+ must be `None` or an integer within the vocabulary "
                              r"\(between 0 and (\d+)\)")


@contextmanager
def _without_warnings_about_default_vocabularies(vocab_size: int) -> Iterator[None]:
    """Drops transformers' token-id warnings that name a vocabulary other than ``vocab_size`` (a default
    config's); one about the model's own vocabulary still shows."""
    def about_our_vocabulary(record: logging.LogRecord) -> bool:
        match = TOKEN_ID_WARNING.match(record.getMessage())
        return match is None or int(match.group(1)) == vocab_size - 1

    config_logger = logging.getLogger("transformers.configuration_utils")  # where the check logs
    config_logger.addFilter(about_our_vocabulary)
    try:
        yield
    finally:
        config_logger.removeFilter(about_our_vocabulary)


def save_checkpoint(out: Path, model: CLIPModel | SiglipModel, tokenizer: CLIPTokenizer,
                    processor: CLIPImageProcessor | SiglipImageProcessor) -> None:
    """An ordinary local checkpoint directory: config + safetensors, tokenizer, image processor; the config's
    vocabulary size and special-token ids are the tokenizer's (checked: a loader trusts them)."""
    text_config = model.config.text_config
    wrong = {key: value for key, value in text_ids(tokenizer).items() if getattr(text_config, key) != value}
    if wrong:
        raise UserError(f"the model's text config has {', '.join(f'{k} {getattr(text_config, k)}' for k in wrong)} "
                        f"where its tokenizer has {', '.join(f'{k} {v}' for k, v in wrong.items())}: build the "
                        "config from the tokenizer it is saved with (small_clip_config or small_siglip_config)")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with _without_warnings_about_default_vocabularies(text_config.vocab_size):
        model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    processor.save_pretrained(out)


def small_siglip_config(tokenizer: CLIPTokenizer, image_size: int = 32, patch_size: int = 8,
                        vision_hidden: int = 32, vision_layers: int = 2, text_hidden: int = 32,
                        text_layers: int = 2, heads: int = 2, projection_dim: int | None = None,
                        max_text_length: int = SIGLIP_TEXT_LENGTH) -> SiglipConfig:
    """A small SigLIP architecture with the same size knobs as ``small_clip_config``.

    SigLIP has no projection layers: the image embedding is the vision width (attention-pooling head), and
    the text head maps the text width to it (``projection_size``). So ``projection_dim`` is accepted for
    the same call and unused. SigLIP pools the text's last position: pad texts to ``max_text_length``.
    """
    return SiglipConfig(
        text_config={"hidden_size": text_hidden, "intermediate_size": 4 * text_hidden,
                     "num_hidden_layers": text_layers, "num_attention_heads": heads,
                     "max_position_embeddings": max_text_length, "projection_size": vision_hidden,
                     **text_ids(tokenizer)},
        vision_config={"hidden_size": vision_hidden, "intermediate_size": 4 * vision_hidden,
                       "num_hidden_layers": vision_layers, "num_attention_heads": heads,
                       "image_size": image_size, "patch_size": patch_size})


def siglip_model(config: SiglipConfig) -> SiglipModel:
    """A randomly initialised ``SiglipModel`` (seed torch first) with the SigLIP paper's temperature and bias.

    transformers initialises both at 0 (4.x: temperature 1, bias 0), which makes every one of a batch's
    n - 1 negatives cost log 2 at the start; -10 starts them near 0 and lets the positives drive learning.
    """
    model = SiglipModel(config)
    width = config.vision_config.hidden_size
    if model.text_model.head.out_features != width:  # transformers < 4.49 has no projection_size
        raise UserError(f"this transformers {transformers.__version__} cannot project the text width "
                        f"{config.text_config.hidden_size} to the image width {width}: upgrade transformers "
                        "or make the text and vision widths equal")
    with torch.no_grad():
        model.logit_scale.fill_(SIGLIP_LOGIT_SCALE)
        model.logit_bias.fill_(SIGLIP_LOGIT_BIAS)
    return model


def siglip_image_processor(image_size: int) -> SiglipImageProcessor:
    """SigLIP's preprocessing at ``image_size``: resize to a square (no crop), rescale, mean 0.5 std 0.5."""
    return SiglipImageProcessor(size={"height": image_size, "width": image_size},
                                image_mean=SIGLIP_MEAN, image_std=SIGLIP_STD)


def random_small_siglip(texts: Iterable[str], seed: int = 0, vocab_size: int = 300,
                        **config: int) -> tuple[SiglipModel, CLIPTokenizer, SiglipImageProcessor]:
    """A randomly initialised small SigLIP with a tokenizer trained on ``texts``."""
    tokenizer = train_tokenizer(texts, vocab_size)
    cfg = small_siglip_config(tokenizer, **config)
    tokenizer.model_max_length = cfg.text_config.max_position_embeddings  # what padding="max_length" pads to
    torch.manual_seed(seed)
    return siglip_model(cfg).eval(), tokenizer, siglip_image_processor(cfg.vision_config.image_size)


@dataclass(frozen=True)
class SmallModel:
    """How the demo builds a small model of one family (``clip_study.models.families``): the model (random,
    from the torch seed) and its image processor."""
    model: Callable[..., CLIPModel | SiglipModel]
    image_processor: Callable[[int], Any]


SMALL_MODELS = {
    "hf_clip": SmallModel(lambda tokenizer, **sizes: CLIPModel(small_clip_config(tokenizer, **sizes)),
                          image_processor),
    "hf_siglip": SmallModel(lambda tokenizer, **sizes: siglip_model(small_siglip_config(tokenizer, **sizes)),
                            siglip_image_processor),
}


def small_model(family: str) -> SmallModel:
    """The builder of a small model of ``family``, or a one-line error naming the choices."""
    if family not in SMALL_MODELS:
        raise UserError(f"unknown model family {family!r}: the demo pretrains one of {', '.join(SMALL_MODELS)}")
    return SMALL_MODELS[family]
