"""The retrieval stage's figure of example queries: what a recall@k is made of, seen on a few queries both ways, so
that a reader can judge whether the misses are near misses (another image of the same kind, a caption that would
fit) or failures.

Image → text rows: the query image, then its top-k captions in rank order, each marked right (one of the image's
captions: green ✓) or wrong (red ✗). Text → image rows: the query caption, then its top-k images, the right one
(the caption's image) framed green, the others red. Small images (the demo's are 32 px) are enlarged by whole
factors with nearest-neighbour, so their pixels stay sharp.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np
from PIL import Image

from clip_study.errors import UserError
from clip_study.reporting.plotting import GREY, plt

RIGHT, WRONG = "#2ca02c", "#d62728"
THUMBNAIL = 96
"""Pixels of a thumbnail's longer side: smaller images are enlarged by a whole factor to at least this, larger ones
shrunk to it."""
CAPTION_CHARACTERS = 90
"""A ranked caption is cut to this many characters (one line beside its query image)."""
QUERY_WIDTH, QUERY_LINES = 28, 6
"""A query caption is wrapped at this many characters, on at most this many lines."""


def example_queries(num_images: int, text_image: np.ndarray, count: int, seed: int) -> tuple[list[int], list[int]]:
    """A seeded choice of ``count`` image queries and ``count`` caption queries (``text_image``: each caption's
    image index), the captions of other images than the image queries where there are enough (one caption per
    image, so that the rows show different images), else any others; fewer where the set has fewer."""
    text_image = np.asarray(text_image)
    if num_images < 1 or count < 0:
        raise ValueError(f"example_queries: {num_images} images and count {count}; need at least 1 and 0")
    if text_image.ndim != 1 or (text_image.size and (text_image.min() < 0 or text_image.max() >= num_images)):
        raise ValueError(f"example_queries: text_image must give each caption an image index below {num_images}")
    rng = np.random.default_rng(seed)
    images = [int(i) for i in rng.choice(num_images, size=min(count, num_images), replace=False)]
    others = np.array([i for i in np.unique(text_image) if i not in set(images)], dtype=int)
    chosen = rng.choice(others, size=min(count, len(others)), replace=False) if len(others) else []
    captions = [int(rng.choice(np.flatnonzero(text_image == image))) for image in chosen]
    if len(captions) < count:  # too few other images: any captions not yet chosen
        rest = [int(c) for c in rng.permutation(len(text_image)) if int(c) not in set(captions)]
        captions += rest[:count - len(captions)]
    return images, captions


def thumbnail(path: Path) -> np.ndarray:
    """An image as an RGB array whose longer side is at least THUMBNAIL pixels if it was smaller (each pixel a
    square block: nearest-neighbour by a whole factor) or at most THUMBNAIL if it was larger."""
    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
    except OSError as error:
        raise UserError(f"{path}: cannot be read as an image ({error}); fetch its caption set again") from None
    side = max(image.size)
    if side < THUMBNAIL:
        factor = math.ceil(THUMBNAIL / side)
        image = image.resize((image.width * factor, image.height * factor), Image.Resampling.NEAREST)
    elif side > THUMBNAIL:
        image.thumbnail((THUMBNAIL, THUMBNAIL), Image.Resampling.LANCZOS)
    return np.asarray(image)


def _cut(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[:width - 1] + "…"


def _wrapped(text: str) -> str:
    lines = textwrap.wrap(" ".join(text.split()), QUERY_WIDTH) or [""]
    if len(lines) > QUERY_LINES:
        lines = lines[:QUERY_LINES - 1] + [_cut(" ".join(lines[QUERY_LINES - 1:]), QUERY_WIDTH)]
    return "\n".join(lines)


def _image_axis(ax, pixels: np.ndarray, frame: str | None = None) -> None:
    ax.imshow(pixels, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(frame is not None)
        if frame is not None:
            spine.set_edgecolor(frame)
            spine.set_linewidth(4)


def _text_axis(ax) -> None:
    ax.axis("off")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)


def plot_retrieval_examples(images: list[Path], captions: list[str], text_image: np.ndarray, image_queries: list[int],
                            image_top: np.ndarray, text_queries: list[int], text_top: np.ndarray, out: Path,
                            title: str) -> None:
    """One PNG at ``out``: for each of ``image_queries`` (image indices) a row with its thumbnail and its top-k
    captions (``image_top``: (queries, k) caption indices in rank order), each marked right or wrong; then for each
    of ``text_queries`` (caption indices) a row with the caption and its top-k images (``text_top``: (queries, k)
    image indices in rank order), the right one framed green. ``text_image``: each caption's image index."""
    text_image, image_top, text_top = np.asarray(text_image), np.asarray(image_top), np.asarray(text_top)
    if len(text_image) != len(captions):
        raise ValueError(f"{len(captions)} captions but text_image gives {len(text_image)} image indices")
    for name, queries, top in (("image", image_queries, image_top), ("text", text_queries, text_top)):
        if top.ndim != 2 or len(top) != len(queries):
            raise ValueError(f"{name}_top has shape {top.shape}: need one row of ranked indices per {name} query "
                             f"({len(queries)})")
    if not len(image_queries) and not len(text_queries):
        raise ValueError("no query to draw: give image_queries or text_queries")
    k_text, k_image = image_top.shape[1], text_top.shape[1]
    columns = 1 + max(k_image, 1)
    blocks = [block for block in (("image", len(image_queries)), ("text", len(text_queries))) if block[1]]
    heights = [h for _, n in blocks for h in (0.35, *([1.3] * n))]
    fig = plt.figure(figsize=(2.4 + 1.25 * (columns - 1), 0.6 + sum(heights)))
    grid = fig.add_gridspec(len(heights), columns, height_ratios=heights, width_ratios=[2.4] + [1.25] * (columns - 1),
                            left=0.02, right=0.98, bottom=0.01, top=1 - 0.55 / (0.6 + sum(heights)), hspace=0.25,
                            wspace=0.08)
    fig.suptitle(title, fontsize=12, fontweight="bold")
    row = 0
    for kind, count in blocks:
        header = fig.add_subplot(grid[row, :])
        _text_axis(header)
        if kind == "image":
            text = f"Image → text: each image's top {k_text} captions (green ✓: one of its own, red ✗: another image's)"
        else:
            text = (f"Text → image: each caption's top {k_image} images (green frame: the caption's image, red: "
                    "another)")
        header.text(0, 0.2, text, fontsize=10, fontweight="bold", va="bottom")
        row += 1
        for i in range(count):
            if kind == "image":
                query = int(image_queries[i])
                ax = fig.add_subplot(grid[row, 0])
                _image_axis(ax, thumbnail(images[query]))
                ax.set_title(f"image {query}", fontsize=8, color=GREY)
                listing = fig.add_subplot(grid[row, 1:])
                _text_axis(listing)
                for rank, caption in enumerate(image_top[i], 1):
                    right = int(text_image[caption]) == query
                    listing.text(0.0, 1 - (rank - 0.5) / max(k_text, 5), f"{rank}  {'✓' if right else '✗'}  "
                                 f"{_cut(captions[caption], CAPTION_CHARACTERS)}", fontsize=8.5, va="center",
                                 color=RIGHT if right else WRONG)
            else:
                query = int(text_queries[i])
                ax = fig.add_subplot(grid[row, 0])
                _text_axis(ax)
                ax.text(0, 0.5, _wrapped(captions[query]), fontsize=8.5, va="center")
                ax.text(0, 1.0, f"caption {query} (of image {int(text_image[query])})", fontsize=8, color=GREY,
                        va="bottom")
                for rank, image in enumerate(text_top[i], 1):
                    cell = fig.add_subplot(grid[row, rank])
                    right = int(image) == int(text_image[query])
                    _image_axis(cell, thumbnail(images[int(image)]), RIGHT if right else WRONG)
                    cell.set_title(f"{rank}{'  ✓' if right else ''}", fontsize=8,
                                   color=RIGHT if right else "black")
            row += 1
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100, metadata={"Software": None})  # no version: the same bytes for the same data
    plt.close(fig)
