"""The file of the fetch_captions stage: what it found in a caption dataset's source, checked, skipped and kept."""

from __future__ import annotations

from dataclasses import dataclass

from clip_study.metrics_files.record import MetricsFile, Record, meaning


@dataclass(frozen=True, kw_only=True)
class CaptionFetchMetrics(Record):
    """The images and captions of a caption dataset's source and of the test-only subset made of them (each image
    its own class, kept with every caption it has)."""

    images_found: int = meaning("images in the source, with a caption or without (count)")
    captions_found: int = meaning("captions of those images (count)")
    images_checked: int = meaning("images with a caption fully decoded to check them (count)")
    images_skipped: int = meaning("checked images left out as bad, with their captions: empty, not an image, "
                                  "truncated... (count)")
    images_without_captions: int = meaning("images left out for having no caption: a hub or parquet row whose "
                                           "captions are null or an empty list, a webdataset sample whose .txt holds "
                                           "no caption (count; 0 for a folder with a captions file)")
    images: int = meaning("images in the subset, all of them test images: the usable ones, capped by max_images "
                          "(count)")
    captions: int = meaning("captions of the images in the subset (count)")
    captions_per_image_min: int = meaning("fewest captions of an image in the subset (count)")
    captions_per_image_max: int = meaning("most captions of an image in the subset (count)")
    skipped_by_reason: dict[str, int] = meaning("images skipped, by reason (each reason of "
                                                "clip_study.data.images.REASONS, 0 included) (count)",
                                                keyed_by="reason")
    ignored_files: int = meaning("image files of the source folder that its captions file does not name (count)")
    damaged_samples: int = meaning("lines of damage in a webdataset source: shards missing, not a tar or cut short, "
                                   "samples without an image or a .txt of captions (count; their images are left "
                                   "out)")


FILES = (MetricsFile(path="metrics/datasets/<captions>/fetch.json", stage="fetch_captions",
                     record=CaptionFetchMetrics,
                     about="A caption dataset's images and captions, and the test-only subset fetch_captions made of "
                           "them."),)
