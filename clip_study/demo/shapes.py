"""Synthetic coloured-shape images and captions for the offline CLIP demo.

A class is a (colour, shape) pair such as "red circle". Some pairs are held out
of pretraining so the demo can test compositional zero-shot classification.
Everything is generated deterministically from a seed with numpy and PIL only.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from clip_study.errors import BadFileError
from clip_study.files import load_npz, save_npz

# Saturated, bright colours that stay far apart (and far from the dark
# background) even after brightness jitter and blending at 32 px.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 190, 60),
    "blue": (40, 90, 235),
    "yellow": (235, 220, 40),
    "purple": (160, 60, 210),
    "orange": (245, 140, 20),
    "white": (240, 240, 240),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "cross", "diamond", "hexagon")

# Rotation range (degrees, +-) per shape: enough to vary the image, small enough
# that a square never turns into a diamond or a cross into an "x".
MAX_ROTATION = {"circle": 0, "square": 15, "triangle": 60, "star": 36, "cross": 20, "diamond": 15, "hexagon": 30}
SUPERSAMPLE = 4  # draw at 4x and box-downsample for anti-aliasing
BARE_LABEL_PROBABILITY = 0.03
SHAPE_SCALE = (0.45, 0.85)  # a shape's width, as a fraction of the image's

# The demo's shift sets: test-only folders of the same classes drawn otherwise, scored with the classifiers fitted
# on the evaluation images (docs/shift.md): the shapes as outlines, on textured backgrounds, or small
SHIFT_SETS = ("outline", "noisy", "small")
OUTLINE_WIDTH = 2  # pixels of an outline's stroke
TEXTURE_CELLS = 4  # a noisy background: 4 x 4 patches of random colours, blended, plus pixel noise
TEXTURE_NOISE = 25.0  # its pixel noise (standard deviation; the plain dark background's: 7)
SMALL_SCALE = (0.2, 0.35)  # the small set's shape width (SHAPE_SCALE's: 0.45 to 0.85), placed anywhere
SMALL_COLOURS = ("red", "green", "blue")  # the small set holds these colours' 21 classes alone

# Caption phrasings; {a} is the article matching the next word, {c} the class name.
TEMPLATES = (
    "a photo of {a} {c}",
    "a picture of {a} {c}",
    "an image of {a} {c}",
    "{a} {c}",
    "{a} {c} on a dark background",
    "there is {a} {c} in the picture",
    "a close-up of {a} {c}",
    "a drawing of {a} {c}",
    "a rendering of {a} {c}",
    "a photo of the {c}",
    "a single {c}",
    "a simple {c} shape",
    "{a} {colour} coloured {shape}",
    "this {shape} is {colour}",
)


def _regular(corners: int, radius: float = 1.0, phase: float = -90.0) -> np.ndarray:
    """Vertices of a regular polygon inside the unit circle, first corner up."""
    angles = np.deg2rad(phase + 360.0 * np.arange(corners) / corners)
    return radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def _star() -> np.ndarray:
    """Five-pointed star: outer and inner corners alternate."""
    radii = np.where(np.arange(10) % 2 == 0, 1.0, 0.42)
    return _regular(10) * radii[:, None]


def _cross(arm: float = 0.33) -> np.ndarray:
    """Plus sign with arms of half-width `arm`."""
    a = arm
    return np.array([(-a, -1), (a, -1), (a, -a), (1, -a), (1, a), (a, a),
                     (a, 1), (-a, 1), (-a, a), (-1, a), (-1, -a), (-a, -a)], dtype=float)


# Unit outlines in [-1, 1]^2 (y points down); the circle is drawn as an ellipse.
OUTLINES: dict[str, np.ndarray] = {
    "square": np.array([(-0.85, -0.85), (0.85, -0.85), (0.85, 0.85), (-0.85, 0.85)]),
    "triangle": _regular(3) + np.array([0.0, 0.2]),  # centre the bounding box
    "star": _star(),
    "cross": _cross(),
    "diamond": np.array([(0.0, -1.0), (0.6, 0.0), (0.0, 1.0), (-0.6, 0.0)]),  # taller than wide, unlike a square
    "hexagon": _regular(6, phase=0.0),
}


def class_name(colour: str, shape: str) -> str:
    """Human-readable class label used in captions and prompts, e.g. "red circle"."""
    return f"{colour} {shape}"


def folder_name(colour: str, shape: str) -> str:
    """Filesystem-safe class label for imagefolder layouts, e.g. "red_circle"."""
    return f"{colour}_{shape}"


def all_classes() -> list[tuple[str, str]]:
    """Every (colour, shape) pair in a fixed colour-major order; class indices refer to it."""
    return [(colour, shape) for colour in COLOURS for shape in SHAPES]


def held_out_pairs(seed: int, count: int = 7) -> list[tuple[str, str]]:
    """Pairs never seen in pretraining; with count=7 every colour and shape occurs exactly once,
    so each held-out pair is a new combination of a seen colour and a seen shape."""
    if not 0 <= count <= len(SHAPES):
        raise ValueError(f"count must be between 0 and {len(SHAPES)}, got {count!r}")
    perm = np.random.default_rng([seed, 2]).permutation(len(SHAPES))
    return [(colour, SHAPES[perm[i]]) for i, colour in enumerate(COLOURS)][:count]


def _shape_mask(shape: str, rng: np.random.Generator, size: int, scale: tuple[float, float] = SHAPE_SCALE,
                outline: int = 0) -> np.ndarray:
    """Anti-aliased coverage (0..1, float32, size x size) of one randomly placed, scaled, rotated shape: filled, or
    with ``outline`` its outline alone, a stroke of that many pixels."""
    big = size * SUPERSAMPLE
    half = rng.uniform(*scale) * big / 2
    centre = rng.uniform(0.8 * half, big - 0.8 * half, 2)  # fully or mostly inside
    angle = np.deg2rad(rng.uniform(-1.0, 1.0) * MAX_ROTATION[shape])
    canvas = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(canvas)
    paint = {"outline": 255, "width": outline * SUPERSAMPLE} if outline else {"fill": 255}
    if shape == "circle":
        x, y = centre
        draw.ellipse((x - half, y - half, x + half, y + half), **paint)
    else:
        cos, sin = np.cos(angle), np.sin(angle)
        points = OUTLINES[shape] @ np.array([[cos, sin], [-sin, cos]]) * half + centre
        draw.polygon([tuple(p) for p in points.tolist()], **paint)
    return np.asarray(canvas.reduce(SUPERSAMPLE), dtype=np.float32)[:, :, None] / 255.0


def _textured_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A noisy background (float32, size x size x 3): patches of random colours, any brightness, blended into each
    other, plus strong pixel noise."""
    cells = rng.uniform(0, 255, (TEXTURE_CELLS, TEXTURE_CELLS, 3)).astype(np.uint8)
    patches = np.asarray(Image.fromarray(cells, mode="RGB").resize((size, size), Image.BILINEAR), dtype=np.float32)
    return patches + TEXTURE_NOISE * rng.standard_normal((size, size, 3), dtype=np.float32)


def _render_array(colour: str, shape: str, rng: np.random.Generator, size: int, shift: str | None = None,
                  ) -> np.ndarray:
    """render() as a uint8 (size, size, 3) array, so batches skip the PIL round trip; ``shift``: one of SHIFT_SETS,
    drawn otherwise (None: as the pretraining and evaluation images, from the same draws as ever)."""
    if shift == "noisy":
        background = _textured_background(rng, size)
    else:
        base = rng.uniform(0, 50, 3).astype(np.float32)
        background = base + 7.0 * rng.standard_normal((size, size, 3), dtype=np.float32)
    fill = (np.array(COLOURS[colour]) + rng.integers(-15, 16, 3)).astype(np.float32)
    cover = _shape_mask(shape, rng, size, SMALL_SCALE if shift == "small" else SHAPE_SCALE,
                        OUTLINE_WIDTH if shift == "outline" else 0)
    pixels = background * (1.0 - cover) + fill * cover
    return np.clip(pixels, 0, 255).astype(np.uint8)


def render(colour: str, shape: str, rng: np.random.Generator, size: int = 32, shift: str | None = None) -> Image.Image:
    """One RGB image of a coloured shape on a dark noisy background (``shift``: drawn as that shift set's);
    deterministic given rng's state."""
    return Image.fromarray(_render_array(colour, shape, rng, size, shift), mode="RGB")


def _article(word: str) -> str:
    """'an' before a vowel sound ("an orange circle"), else 'a'."""
    return "an" if word[0] in "aeiou" else "a"


def caption(colour: str, shape: str, rng: np.random.Generator) -> str:
    """A random natural phrasing naming the class; rarely the bare label, as in web alt text."""
    name = class_name(colour, shape)
    if rng.random() < BARE_LABEL_PROBABILITY:
        return name
    template = TEMPLATES[rng.integers(len(TEMPLATES))]
    return template.format(a=_article(colour), c=name, colour=colour, shape=shape)


def pretraining_set(
    n: int, seed: int, held_out: list[tuple[str, str]], size: int = 32
) -> tuple[np.ndarray, list[str], np.ndarray]:
    """n images (uint8, n x size x size x 3), their captions and class indices into all_classes(),
    drawn uniformly from the classes that are not held out."""
    classes = all_classes()
    excluded = {tuple(pair) for pair in held_out}
    allowed = np.array([i for i, pair in enumerate(classes) if pair not in excluded])
    if len(allowed) == 0:
        raise ValueError(f"every class is held out: {sorted(excluded)}")
    rng = np.random.default_rng(seed)
    labels = rng.choice(allowed, size=n)
    images = np.empty((n, size, size, 3), dtype=np.uint8)
    captions = []
    for i, label in enumerate(labels.tolist()):
        colour, shape = classes[label]
        images[i] = _render_array(colour, shape, rng, size)
        captions.append(caption(colour, shape, rng))
    return images, captions, labels.astype(np.int64)


def write_image_folder(root: Path, per_class: int, seed: int, size: int = 32) -> None:
    """Evaluation set root/<folder_name>/<index:04d>.png for all classes, held-out ones included,
    from a seed stream independent of pretraining_set's."""
    rng = np.random.default_rng([seed, 1])
    for colour, shape in all_classes():
        folder = Path(root) / folder_name(colour, shape)
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            render(colour, shape, rng, size).save(folder / f"{index:04d}.png")


def write_shape_folder(root: Path, per_shape: int, seed: int, size: int = 32) -> None:
    """A second evaluation set with a class space of its own, the shapes alone: root/<shape>/<index:04d>.png,
    each image in a colour drawn uniformly (held-out pairs included), from a seed stream of its own, so that
    the first set's images do not change with it."""
    rng = np.random.default_rng([seed, 3])
    colours = list(COLOURS)
    for shape in SHAPES:
        folder = Path(root) / shape
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(per_shape):
            render(colours[rng.integers(len(colours))], shape, rng, size).save(folder / f"{index:04d}.png")


def shift_classes(shift: str) -> list[tuple[str, str]]:
    """The (colour, shape) classes of a shift set, in all_classes() order: every one, or for the small set those
    of SMALL_COLOURS alone (so that its scores are read on the source classes it matches)."""
    if shift not in SHIFT_SETS:
        raise ValueError(f"shift must be one of {SHIFT_SETS}, got {shift!r}")
    return [(colour, shape) for colour, shape in all_classes() if shift != "small" or colour in SMALL_COLOURS]


def write_shift_sets(root: Path, per_class: int, seed: int, size: int = 32) -> dict[str, int]:
    """The shift sets as image folders root/<shift>/<folder_name>/<index:04d>.png (the evaluation set's folder
    names, so a class matches its source class by id), each from a seed stream of its own; their image counts."""
    counts = {}
    for stream, shift in enumerate(SHIFT_SETS, start=4):  # streams 1-3: the evaluation sets and held-out pairs
        rng = np.random.default_rng([seed, stream])
        classes = shift_classes(shift)
        for colour, shape in classes:
            folder = Path(root) / shift / folder_name(colour, shape)
            folder.mkdir(parents=True, exist_ok=True)
            for index in range(per_class):
                render(colour, shape, rng, size, shift).save(folder / f"{index:04d}.png")
        counts[shift] = per_class * len(classes)
    return counts


def write_caption_set(root: Path, per_class: int, captions_per_image: int, seed: int, size: int = 32,
                      ) -> tuple[int, int]:
    """The demo's caption dataset, a folder with a captions file that fetch_captions reads: images
    root/images/<folder_name>/<index:04d>.png of all classes (held-out ones included), each with
    ``captions_per_image`` captions drawn as the pretraining captions are, listed in root/test.jsonl (one line an
    image). From a seed stream of its own, so that no other generated image changes with it; (images, captions)."""
    rng = np.random.default_rng([seed, 7])  # streams 1-6: the evaluation sets, the held-out pairs, the shift sets
    lines = []
    for colour, shape in all_classes():
        folder = Path(root) / "images" / folder_name(colour, shape)
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            render(colour, shape, rng, size).save(folder / f"{index:04d}.png")
            texts = [caption(colour, shape, rng) for _ in range(captions_per_image)]
            lines.append(json.dumps({"image": f"images/{folder.name}/{index:04d}.png", "captions": texts}))
    (Path(root) / "test.jsonl").write_text("".join(f"{line}\n" for line in lines))
    return len(lines), len(lines) * captions_per_image


def held_out_record(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    """Held-out classes as fetch will name them (folder name, underscores -> spaces) and their folders."""
    return {"classes": [class_name(colour, shape) for colour, shape in pairs],
            "folders": [folder_name(colour, shape) for colour, shape in pairs]}


def write_pretraining_set(path: Path, images: np.ndarray, captions: list[str], labels: np.ndarray) -> None:
    """npz with ``images`` uint8 (N,S,S,3), ``captions`` a fixed-width unicode array and ``labels``
    int64: no object arrays, so it loads with ``allow_pickle=False``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    save_npz(path, images=images, captions=np.array(captions, dtype=str), labels=labels.astype(np.int64))


def load_pretraining_set(path: Path, fix: str | None = None) -> tuple[np.ndarray, list[str]]:
    """Images (uint8, N x S x S x 3) and captions, as ``write_pretraining_set`` wrote them."""
    fix = fix or "generate it again"
    arrays = load_npz(path, fix)
    images, captions = arrays["images"], arrays["captions"]
    if images.ndim != 4 or images.shape[1] != images.shape[2] or images.shape[3] != 3 or images.dtype != np.uint8:
        raise BadFileError(path, f"holds images {images.dtype} {images.shape}, not uint8 (N, S, S, 3)", fix)
    if captions.dtype.kind != "U" or captions.shape != images.shape[:1]:
        raise BadFileError(path, f"holds {len(images)} images and captions {captions.dtype} {captions.shape}, not "
                                 "one text each", fix)
    return images, captions.tolist()
