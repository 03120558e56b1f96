"""Loading from the Hugging Face hub without sitting through minutes of retries when it is unreachable.

Without network, ``from_pretrained`` retries for ~30 s and a processor for minutes. We check in
well under a second whether the hub answers; if it does not, we load from the local cache only and
turn a miss into one line that says how to get the files.
"""

from __future__ import annotations

import os
import socket
from typing import Callable, TypeVar
from urllib.parse import urlparse

from clip_study.errors import UserError

T = TypeVar("T")

_TRUE = {"1", "on", "yes", "true"}


def offline_requested() -> bool:
    """True when the user asked the Hugging Face libraries to stay offline."""
    return any(os.environ.get(name, "").lower() in _TRUE
               for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"))


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether a TCP connection to the hub's endpoint opens within ``timeout`` seconds."""
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        socket.create_connection((endpoint.hostname, port), timeout=timeout).close()
        return True
    except OSError:
        return False


def load_from_hub(load: Callable[[bool], T], kind: str, name: str) -> T:
    """Call ``load(local_only)``: from the cache only when offline, with downloads otherwise.

    ``kind`` ("model", "dataset") only shapes the error message.
    """
    offline = offline_requested() or not hub_reachable()
    if not offline:
        return load(False)
    try:
        return load(True)
    except (OSError, ValueError, ConnectionError) as error:
        reason = "HF_HUB_OFFLINE is set" if offline_requested() else "the Hugging Face hub is unreachable"
        raise UserError(
            f"{kind} '{name}' is not in the local Hugging Face cache and {reason}: download it once on a "
            f"machine with network (`hf download {name}{' --repo-type dataset' if kind == 'dataset' else ''}`, "
            f"then copy ~/.cache/huggingface) or give the path of a local directory instead"
            f" [{type(error).__name__}]") from error
