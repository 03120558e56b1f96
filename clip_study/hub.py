"""Loading from the Hugging Face hub without sitting through minutes of retries when it is unreachable.

Without network, ``from_pretrained`` retries for ~30 s and a processor for minutes. We check in
well under a second whether the hub answers; if it does not, we load from the local cache only and
turn a miss into one line that says how to get the files. Which names can be hub ids, and whether one is in
the local cache, are answered here too, without network, for the check of the params before any stage runs.
"""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path
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
    """Whether a TCP connection to the hub's endpoint opens within ``timeout`` seconds, the name lookup included
    (a socket's own timeout leaves the lookup out, and a resolver that gets no answer retries for longer)."""
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    opened: list[bool] = []

    def connect() -> None:
        try:
            socket.create_connection((endpoint.hostname, port), timeout=timeout).close()
            opened.append(True)
        except OSError:
            opened.append(False)

    attempt = threading.Thread(target=connect, daemon=True)  # left behind, if it hangs, when the process ends
    attempt.start()
    attempt.join(timeout)
    return opened[:1] == [True]


def offline_reason(timeout: float = 3.0) -> str | None:
    """Why the hub cannot be used now (offline mode asked for, or no answer within ``timeout`` seconds), or
    None when it can; in offline mode no connection is tried."""
    if offline_requested():
        return "HF_HUB_OFFLINE is set"
    if not hub_reachable(timeout):
        return "the Hugging Face hub is unreachable"
    return None


def could_be_hub_id(name: str) -> bool:
    """Whether ``name`` has the form of a hub id ('owner/name' or 'name': no file suffix, no leading '.' or '/',
    at most one '/'). A local path of that form (``data/images``) reads both ways."""
    return not (Path(name).suffix or name.startswith((".", "/")) or name.count("/") > 1)


def in_local_cache(kind: str, name: str) -> bool:
    """Whether the local Hugging Face cache holds the ``kind`` ('model', 'dataset') ``name``, looked up without
    network or loading: a snapshot of it in the hub cache, or, for a dataset, a copy that datasets prepared.
    A cached copy that lacks a file fails when a stage loads it, with that stage's message."""
    from huggingface_hub import constants
    from huggingface_hub.file_download import repo_folder_name

    snapshots = Path(constants.HF_HUB_CACHE) / repo_folder_name(repo_id=name, repo_type=kind) / "snapshots"
    if snapshots.is_dir() and any(snapshots.iterdir()):
        return True
    prepared = Path(os.environ.get("HF_DATASETS_CACHE") or Path(constants.HF_HOME) / "datasets")
    if kind != "dataset" or not prepared.is_dir():  # datasets keeps what it prepared apart
        return False
    # datasets names the folder <owner>___<name> with the name snake-cased (underscores added, lower case)
    loose = "___".join(name.split("/")).lower().replace("_", "")
    return any(entry.is_dir() and entry.name.lower().replace("_", "") == loose for entry in os.scandir(prepared))


def not_cached(kind: str, name: str, reason: str) -> str:
    """What to do about a ``kind`` ``name`` that is needed from the hub, not cached, while ``reason``."""
    return (f"{kind} '{name}' is not in the local Hugging Face cache and {reason}: download it once on a machine "
            f"with network (`hf download {name}{' --repo-type dataset' if kind == 'dataset' else ''}`, then copy "
            "~/.cache/huggingface) or give the path of a local directory instead")


def load_from_hub(load: Callable[[bool], T], kind: str, name: str) -> T:
    """Call ``load(local_only)``: from the cache only when offline, with downloads otherwise.

    ``kind`` ("model", "dataset") only shapes the error message.
    """
    reason = offline_reason()
    if reason is None:
        return load(False)
    try:
        return load(True)
    except (OSError, ValueError, ConnectionError) as error:
        raise UserError(f"{not_cached(kind, name, reason)} [{type(error).__name__}]") from error
