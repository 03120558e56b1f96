"""Loading a checkpoint of any model family (a hub id or a local directory) with transformers 4.x or 5.x,
on the device asked for, without sitting through minutes of retries when the hub is unreachable."""

from __future__ import annotations

import hashlib
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, NamedTuple

import torch
import transformers
from transformers import AutoConfig, AutoTokenizer

from clip_study.errors import BadFileError, UserError
from clip_study.files import read_json
from clip_study.hub import could_be_hub_id, load_from_hub
from clip_study.models.families import AUTO, resolve_family


class Clip(NamedTuple):
    """A loaded checkpoint: the model (eval mode, on its device), its tokenizer and image processor."""

    model: Any
    tokenizer: Any
    processor: Any


def pick_device(requested: str = "auto") -> torch.device:
    """``auto`` prefers cuda, then Apple's mps, then the cpu."""
    if requested != "auto":
        device = torch.device(requested)
        available = {"cuda": torch.cuda.is_available() and (device.index or 0) < torch.cuda.device_count(),
                     "mps": torch.backends.mps.is_available()}.get(device.type, True)
        if not available:
            raise UserError(f"'{requested}' is not available on this machine (torch {torch.__version__}); "
                            "use 'auto' or 'cpu'")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


# what a checkpoint directory holds, per part: alternatives, each the files that together hold the part.
# The image processor's settings: transformers 4.x saves them in preprocessor_config.json; 5.x's processors
# (CLIPProcessor.save_pretrained) nest them in processor_config.json instead, under the key in NESTED.
CHECKPOINT_FILES = {
    "config": [("config.json",)],
    "weights": [("model.safetensors",), ("model.safetensors.index.json",), ("pytorch_model.bin",),
                     ("pytorch_model.bin.index.json",)],
    "tokenizer": [("tokenizer.json",), ("vocab.json", "merges.txt")],
    "image processor": [("preprocessor_config.json",), ("processor_config.json",)],
}
# files that hold their part only with this key: a 4.x processor's processor_config.json holds its own
# settings, not the image processor's
NESTED = {"processor_config.json": "image_processor"}
# the first transformers that reads the image processor from processor_config.json
READS_NESTED_FROM = (4, 56)
# files transformers also reads for a part when they are there: checked too, whichever file holds the part
EXTRAS = {"tokenizer": ("tokenizer_config.json", "special_tokens_map.json", "added_tokens.json"),
          "image processor": ("preprocessor_config.json", "processor_config.json")}
SAVE_AGAIN = "save the checkpoint again (save_pretrained) or download it again"


def transformers_version() -> tuple[int, int]:
    """(major, minor) of the installed transformers: 4.x and 5.x save and load checkpoints differently."""
    major, minor = transformers.__version__.split(".")[:2]
    return int(major), int(minor)


def check_checkpoint(directory: Path, part: str) -> None:
    """Before transformers reads a local checkpoint: the part's files are there, every JSON file among them
    (and config.json, which every part reads) parses, and every safetensors file's header reads, so that
    a missing or damaged file is one line naming it, never a traceback or a silent fallback."""
    present = next((files for files in CHECKPOINT_FILES[part] if all(_holds(directory / f) for f in files)), None)
    if present is None:
        wanted = " or ".join(" and ".join(_described(f) for f in files) for files in CHECKPOINT_FILES[part])
        raise UserError(f"{directory} has no {part} ({wanted}); a checkpoint directory needs what save_pretrained "
                        "writes for the model, tokenizer and image processor")
    nested = [f for f in present if f in NESTED]
    if nested and transformers_version() < READS_NESTED_FROM:
        raise UserError(f"{directory} holds its {part} in {nested[0]} (as transformers 5.x saves it), which "
                        f"transformers {transformers.__version__} does not read: upgrade transformers to "
                        f"{'.'.join(map(str, READS_NESTED_FROM))} or later")
    files = ["config.json", *present, *EXTRAS.get(part, ())]
    for index in (f for f in present if f.endswith(".index.json")):
        files += sorted(set(read_json(directory / index, fix=SAVE_AGAIN)["weight_map"].values()))
    for path in dict.fromkeys(directory / file for file in files):
        if path.suffix == ".json" and path.is_file():
            read_json(path, fix=SAVE_AGAIN)
        elif path.suffix == ".safetensors":
            _check_safetensors(path)


def _holds(path: Path) -> bool:
    """The file is there and, if it holds its part only under a key (``NESTED``), has that key."""
    return path.is_file() and (path.name not in NESTED or NESTED[path.name] in read_json(path, fix=SAVE_AGAIN))


def _described(file: str) -> str:
    return f"{file} holding {NESTED[file]!r}" if file in NESTED else file


def _check_safetensors(path: Path) -> None:
    from safetensors import safe_open

    if not path.is_file():
        raise BadFileError(path, "not found", SAVE_AGAIN)
    try:
        with safe_open(path, "pt"):  # reads the header: a truncated or foreign file fails here
            pass
    except Exception as error:  # safetensors raises its own SafetensorError, and OSError
        raise BadFileError(path, f"is damaged ({str(error).splitlines()[0][:120]})", SAVE_AGAIN) from error


@contextmanager
def _quiet_transformers() -> Iterator[None]:
    """transformers prints a table of missing weights; ``load_model`` turns them into one line itself."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)


def _load(cls: Any, name: str, what: str, **kwargs: Any) -> Any:
    """``cls.from_pretrained(name)`` from a local directory (checked first), the cache, or (if reachable)
    the hub; ``what`` is a part of ``CHECKPOINT_FILES``."""
    if Path(name).is_dir():
        check_checkpoint(Path(name), what)
        try:
            with _quiet_transformers():
                return cls.from_pretrained(name, **kwargs)
        except Exception as error:  # transformers, tokenizers and safetensors raise many kinds
            raise UserError(f"{name}: its {what} does not load ({type(error).__name__}: "
                            f"{str(error).splitlines()[0][:120] if str(error) else ''}); {SAVE_AGAIN}") from error
    if not could_be_hub_id(name):
        raise UserError(f"'{name}' is neither a local directory nor a hub id like "
                        "'openai/clip-vit-base-patch32': check the path")

    def load(local_only: bool) -> Any:
        with _quiet_transformers():
            return cls.from_pretrained(name, local_files_only=local_only, **kwargs)

    return load_from_hub(load, "model", name)


def load_model(name: str, device: torch.device | str = "cpu", family: str = AUTO) -> Any:
    """A checkpoint (hub id or local directory) of ``family`` (``auto``: the one its config names, see
    ``families``) in eval mode on ``device``, every weight loaded from the checkpoint (none left at random
    initialisation) and finite."""
    model_type = _load(AutoConfig, name, "config").model_type
    model_class = resolve_family(family, model_type, name).model_class(model_type)
    model, info = _load(model_class, name, "weights", output_loading_info=True, ignore_mismatched_sizes=True)
    mismatched = [key if isinstance(key, str) else key[0] for key in info.get("mismatched_keys", ())]
    missing = sorted(info["missing_keys"]) + sorted(f"{key} (another shape)" for key in mismatched)
    if missing:
        raise UserError(f"{name}: its weights lack {len(missing)} tensor(s) of its architecture (e.g. "
                        f"{missing[0]}), which would start random; the weights file is incomplete or from another "
                        f"model: {SAVE_AGAIN}")
    damaged = next((key for key, tensor in model.state_dict().items()
                    if tensor.is_floating_point() and not torch.isfinite(tensor).all()), None)
    if damaged is not None:
        raise UserError(f"{name}: weight {damaged} holds NaN or infinite values: the weights are damaged; {SAVE_AGAIN}")
    return model.to(device).eval()


def load_image_processor(name: str) -> Any:
    """The checkpoint's image processor, with transformers' PIL backend: the preprocessing of the original
    CLIP (PIL's bicubic resize) and of transformers 4.x, whether or not torchvision is installed (with it,
    transformers 5.x would otherwise pick a torchvision backend whose resize differs by up to 0.03)."""
    from transformers import AutoImageProcessor  # imported here: it costs ~2 s, and only images need it

    pil = {"backend": "pil"} if transformers_version() >= (5, 0) else {"use_fast": False}
    return _load(AutoImageProcessor, name, "image processor", **pil)


def load_tokenizer(name: str, model: Any | None = None) -> Any:
    """The checkpoint's tokenizer, checked against ``model`` when given (``check_tokenizer``)."""
    tokenizer = _load(AutoTokenizer, name, "tokenizer")
    if model is not None:
        check_tokenizer(model, tokenizer)
    return tokenizer


def check_tokenizer(model: Any, tokenizer: Any) -> None:
    """A tokenizer made for the model: its ids fit the model's token embeddings, and it is not the near-empty
    fallback transformers builds when a checkpoint's tokenizer files are missing (every prompt would then
    encode alike and zero-shot would still report a number)."""
    embeddings, size = model.config.text_config.vocab_size, len(tokenizer)
    if size > embeddings or size < embeddings // 2:
        raise UserError(f"the tokenizer has {size} tokens for a model with {embeddings} token embeddings: its "
                        "files are missing, damaged or from another model; use the checkpoint's own tokenizer")


def load_clip(name: str, device: str = "auto", family: str = AUTO) -> Clip:
    """Model, tokenizer and image processor of a checkpoint of any family, the model on ``device``
    (``auto``: cuda, then mps, then the cpu)."""
    model = load_model(name, pick_device(device), family)
    return Clip(model, load_tokenizer(name, model), load_image_processor(name))


def model_fingerprint(*modules: torch.nn.Module) -> str:
    """A hash of the modules' weights (a changed checkpoint at the same path must not reuse old features)."""
    digest = hashlib.blake2b(digest_size=16)
    for module in modules:
        for name, tensor in module.state_dict().items():
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()
