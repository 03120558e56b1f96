"""Params section ``extract``: how image features are computed (read by extract, the one heavy stage)."""

from __future__ import annotations

from clip_study.models.precision import PRECISIONS
from clip_study.pipeline.keys import Section, auto_or_whole, one_of, whole

EXTRACT = Section("extract", "how image features are computed", {
    "batch_size": whole(1, doc="images per forward pass (on a cpu the features do not depend on it; on a GPU "
                               "the projection is batched, so they may differ in the last bits)"),
    "workers": auto_or_whole(0, doc="decoding processes (`auto`: 0 on a cpu with fewer than 4 cores, 1 from 4 up; "
                                    "on a gpu every core but one, up to 32)"),
    "threads": auto_or_whole(1, doc="torch threads for the model (`auto`: every core the process may use)"),
    "precision": one_of(*PRECISIONS, default="auto",
                        doc="`auto` (fp16 on cuda, fp32 elsewhere), `fp32`, `int8` (cpu only: dynamic quantisation "
                            "of the linear layers), `fp16`, `bf16` (on a GPU)"),
    "shard_size": whole(1, default=4096, doc="images per resumable shard: an interrupted extraction loses at most "
                                             "one shard"),
    "engine": one_of("local", "ray", default="local",
                     doc="`local`, or `ray`: encode on a Ray cluster (the `ray` extra); on a cpu the features are "
                         "byte-identical"),
    "ray_address": one_of("local", "auto", default="local",
                          extra=" or a cluster address ('host:port', 'ray://host:port')",
                          pattern=r"(ray://)?[^\s:/]+:\d{1,5}",
                          doc="engine `ray`: `local` starts an in-process cluster of this machine's cores, `auto` "
                              "joins this machine's cluster, or a cluster's `host:port` / `ray://host:port`"),
    "ray_actors": auto_or_whole(1, doc="engine `ray`: encoding actors, one model each (`auto`: one per GPU of the "
                                       "cluster, else one)"),
})
