"""The Ray engine of feature extraction: the same features as ``extraction.extract_features``, encoded on a
Ray cluster (an in-process one on this machine by default, or a cluster of many).

The subset's image list becomes a Ray dataset; CPU tasks decode and preprocess the images (the local
engine's own ``Preprocessing``), an actor pool encodes them (one model per actor, the local engine's own
``ImageEncoder``, so on a CPU the features are byte-identical), and the driver writes the results, in order,
to the same resumable shards the local engine writes (``extraction.plan_extraction`` names them for both
engines, so a run started by one resumes under the other) and assembles the same ``<split>.npz``. Rows
stream: the driver holds one shard at a time. Ray is imported only here, and only when this engine runs.
"""

from __future__ import annotations

import logging
import math
import os
import re
import socket
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch

from clip_study.data import shards
from clip_study.errors import UserError
from clip_study.models.encoding import CHECK_IMAGES, prepare_run
from clip_study.models.extraction import ExtractionPlan, finish, plan_extraction

CONNECT_TIMEOUT_S = 5.0  # an address that does not answer within this is an error, not minutes of Ray's retries
ACTOR_RESTARTS = 2  # a dead actor is restarted (and its batch retried) this often, then the run stops
ROWS_FAILED = re.compile(r"clip_study rows (\d+)-(\d+) failed: ([^\n]*)")
INSTALL = "pip install -c constraints.txt -e '.[ray]' (or use the local engine)"


def import_ray() -> Any:
    """Ray, or one line saying how to install it (it is an optional extra)."""
    try:
        import ray
        import ray.data  # noqa: F401  (ray without its data extra lacks it)
    except ImportError as error:
        raise UserError(f"the 'ray' engine needs ray[data], which is not installed ({error.name} is missing): "
                        f"{INSTALL}") from None
    return ray


def _probe(address: str) -> None:
    """Fail within seconds when nothing listens at ``host:port`` (Ray itself keeps retrying for minutes)."""
    target = address.split("://", 1)[-1]
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"{address!r} is no Ray address: use 'local', 'auto', 'host:port' or 'ray://host:port'")
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as error:
        raise UserError(f"no Ray cluster answers at {address!r} ({error.strerror or type(error).__name__}): start "
                        "one there (`ray start --head`), or use 'local' or 'auto'") from None


@contextmanager
def cluster(address: str, cpus: int, log: Callable[[str], None] = print) -> Iterator[Any]:
    """Ray connected to ``address``: 'local' starts an in-process cluster of ``cpus`` CPUs (shut down on the
    way out), 'auto' joins the cluster this machine belongs to, anything else is a cluster's address. A
    process already connected (a notebook that called ``ray.init``) keeps its connection, left open."""
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    started = time.perf_counter()
    if address not in ("local", "auto"):
        _probe(address)
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "error")  # the C++ core's warnings would fill the stage's log
    if address == "local":  # Ray runs workers at nice 15: on a busy machine they would yield to everything else
        os.environ.setdefault("RAY_worker_niceness", "0")
    settings: dict[str, Any] = {"num_cpus": cpus, "include_dashboard": False} if address == "local" else {}
    try:
        ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR, **settings)
    except ConnectionError as error:
        raise UserError(f"Ray address {address!r}: {str(error).splitlines()[0]}") from None
    resources = ray.cluster_resources()
    log(f"Ray cluster {address}: {resources.get('CPU', 0):g} CPUs, {resources.get('GPU', 0):g} GPUs, up in "
        f"{time.perf_counter() - started:.1f} s")
    try:
        yield ray
    finally:
        ray.shutdown()


def default_actors(gpus: float) -> int:
    """One actor per GPU of the cluster, else one (on CPUs one actor already uses every core's thread)."""
    return max(1, int(gpus))


def load_encoder_model(name: str, family: str, device: str) -> tuple[Any, Any]:
    """The model and image processor an actor encodes with (the one place an actor loads a checkpoint)."""
    from clip_study.models.loading import load_image_processor, load_model

    return load_model(name, torch.device(device), family), load_image_processor(name)


class _Failed(Exception):
    """A batch that failed, with its rows' global indices in the message, where the driver finds them."""

    def __init__(self, indices: np.ndarray, error: BaseException) -> None:
        lines = str(error).strip().splitlines()
        detail = lines[0] if isinstance(error, UserError) else f"{type(error).__name__}: {lines[0] if lines else ''}"
        super().__init__(f"clip_study rows {int(indices.min())}-{int(indices.max())} failed: {detail}")


def _decoder(in_worker: Callable[[Any], np.ndarray]) -> Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]:
    """A Ray task's function: image paths to what the preprocessing's worker side makes of them."""
    def decode(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from clip_study.data.images import open_rgb

        try:
            pixels = np.stack([in_worker(open_rgb(Path(path))) for path in batch["path"]])
        except Exception as error:
            raise _Failed(batch["index"], error) from None
        return {"index": batch["index"], "pixels": pixels}

    return decode


class Encoder:
    """An actor of the pool: one model, loaded once, encoding pixel batches with the local engine's
    ``ImageEncoder`` (decided on the same first images, so it takes the same path as the driver planned)."""

    def __init__(self, name: str, family: str, device: str, precision: str, threads: int, check_paths: list[str],
                 planned: tuple[str, str]) -> None:
        torch.set_num_threads(threads)
        model, processor = load_encoder_model(name, family, device)
        preprocessing, self.encode = prepare_run(model, processor, [Path(p) for p in check_paths], precision,
                                                 log=lambda message: None)
        got = (preprocessing.name, self.encode.mode)
        self.mismatch = None if got == planned else (
            f"an actor on {device} encodes with {got[0]} preprocessing, {got[1]}, the driver planned {planned[0]}, "
            f"{planned[1]}: run the driver on a machine of the actors' kind (same device and CPU)")

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        try:
            if self.mismatch:
                raise UserError(self.mismatch)
            features = self.encode(torch.from_numpy(np.ascontiguousarray(batch["pixels"]))).cpu().numpy()
            if not np.isfinite(features).all():
                raise UserError("the model gave NaN or infinite features: the computation overflows at this "
                                "precision; use fp32 (or bf16)")
        except Exception as error:
            raise _Failed(batch["index"], error) from None
        return {"index": batch["index"], "features": features}


@contextmanager
def _ordered_quiet_data(ray: Any) -> Iterator[None]:
    """Ray Data in input order (shards are written in order) and without progress bars, restored after."""
    context = ray.data.DataContext.get_current()
    saved = (context.execution_options.preserve_order, context.enable_progress_bars,
             context.enable_operator_progress_bars, context.enable_auto_log_stats)
    context.execution_options.preserve_order = True
    context.enable_progress_bars = context.enable_operator_progress_bars = context.enable_auto_log_stats = False
    data_logger = logging.getLogger("ray.data")
    level = data_logger.level
    data_logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        (context.execution_options.preserve_order, context.enable_progress_bars,
         context.enable_operator_progress_bars, context.enable_auto_log_stats) = saved
        data_logger.setLevel(level)


def _rows(ray: Any, plan: ExtractionPlan, name: str, family: str, device: str, precision: str, batch_size: int,
          threads: int,
          actors: int, check_paths: list[str]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(indices, features) batches of every image left to encode, in order (indices across the splits' todo
    lists laid end to end)."""
    paths = [os.path.abspath(path) for split_paths in plan.todo_paths.values() for path in split_paths]
    if not paths:
        return
    cluster_cpus = float(ray.cluster_resources().get("CPU", 1))
    gpu = device.startswith("cuda")
    # accounting only (torch's threads do the work): leave a CPU for the decode tasks, or 2 actors of 1 CPU
    # on a 2-CPU machine starve them and the run never ends
    actor_cpus = max(0.25, min(float(threads), (cluster_cpus - 1) / actors)) if cluster_cpus > 1 else 0.25
    items = [{"index": index, "path": path} for index, path in enumerate(paths)]
    dataset = ray.data.from_items(items, override_num_blocks=max(1, math.ceil(len(items) / batch_size)))
    dataset = dataset.map_batches(_decoder(plan.preprocessing.in_worker), batch_size=batch_size, num_cpus=1)
    with warnings.catch_warnings():  # restarts have no named parameter yet (Ray 2.60): the extra pins ray < 2.64
        warnings.simplefilter("ignore")
        dataset = dataset.map_batches(
            Encoder, batch_size=batch_size, compute=ray.data.ActorPoolStrategy(size=actors),
            fn_constructor_args=(name, family, device, precision, threads, check_paths,
                                 (plan.preprocessing.name, plan.encode.mode)),
            num_cpus=actor_cpus, num_gpus=1 if gpu else 0, max_restarts=ACTOR_RESTARTS,
            max_task_retries=ACTOR_RESTARTS)
    expected = 0
    for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
        indices = batch["index"]
        if not np.array_equal(indices, np.arange(expected, expected + len(indices))):  # preserve_order broken
            raise RuntimeError(f"ray engine: rows came out of order (expected {expected}, got {indices[:3]}...)")
        expected += len(indices)
        yield indices, np.asarray(batch["features"], dtype=np.float32)


def _take(rows: Iterator[tuple[np.ndarray, np.ndarray]], count: int,
          carry: list[np.ndarray]) -> Iterator[np.ndarray]:
    """The next ``count`` feature rows of the stream as batches (rows past them stay in ``carry``)."""
    left = count
    while left > 0:
        batch = carry.pop() if carry else next(rows)[1]
        if len(batch) > left:
            carry.append(batch[left:])
            batch = batch[:left]
        left -= len(batch)
        yield batch


def _failed_shard(plan: ExtractionPlan, error: BaseException) -> str:
    """The shard a failure hit (from the rows it names, else the first not yet written) and the cause."""
    match = ROWS_FAILED.search(str(error))
    cause = match.group(3) if match else f"{type(error).__name__}: {(str(error).strip().splitlines() or [''])[-1]}"
    todo = [(split, shard) for split, split_todo in plan.todo.items() for shard in split_todo]
    offsets = np.cumsum([0] + [len(shard) for _, shard in todo])
    if match:
        split, shard = todo[int(np.searchsorted(offsets, int(match.group(1)), side="right")) - 1]
    else:
        split, shard = next(((s, t) for s, t in todo if not (plan.work / t.name).exists()), todo[-1])
    return f"shard {shard.name} ({split} images {shard.start}-{shard.stop - 1}) failed on the Ray cluster: {cause}"


def extract_features_ray(ray: Any, model: Any, processor: Any, splits: dict[str, tuple[list[Path], np.ndarray]],
                         out: Path, name: str, precision: str, batch_size: int, threads: int, shard_size: int,
                         actors: int | None = None, log: Callable[[str], None] = print,
                         family: str = "auto") -> tuple[int, float]:
    """As ``extraction.extract_features``, with the encoding on the Ray cluster ``ray`` is connected to (see
    ``cluster``): ``actors`` actors (None: one per GPU of the cluster, else one) each load checkpoint
    ``name`` (of ``family``) on the device ``model`` is on and run ``threads`` torch threads. The images and
    the checkpoint
    must be readable at the same paths on every node. A failed or interrupted run keeps its finished
    shards; the rerun encodes only the rest."""
    device = str(next(model.parameters()).device)
    plan = plan_extraction(model, processor, splits, out, precision, shard_size, log)
    first_paths = next((paths for paths, _ in splits.values() if paths), [])
    check_paths = [os.path.abspath(path) for path in first_paths[:CHECK_IMAGES]]
    name = os.path.abspath(name) if Path(name).is_dir() else name
    actors = actors or default_actors(ray.cluster_resources().get("GPU", 0))
    log(f"{actors} Ray actor(s) of {threads} threads, {plan.encode.mode}, {plan.preprocessing.name} preprocessing, "
        f"batches of {batch_size} on {device}")
    plan.work.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with _ordered_quiet_data(ray):
        rows, carry = _rows(ray, plan, name, family, device, precision, batch_size, threads, actors, check_paths), []
        try:
            for split in splits:
                count = len(plan.todo_paths[split])
                shards.write(plan.work, plan.todo[split], _take(rows, count, carry))
                if count:
                    log(f"{split}: {count} images encoded")
        except UserError:
            raise
        except Exception as error:  # Ray wraps what failed in its own exception types
            raise UserError(f"{_failed_shard(plan, error)}; the finished shards stay in {plan.work}: fix the "
                            "cause and rerun to resume") from error
        finally:
            rows.close()
    seconds = time.perf_counter() - start
    finish(plan, splits, out)
    return sum(len(paths) for paths in plan.todo_paths.values()), seconds
