"""The file of the fetch stage: what it found in the source, checked, skipped and kept."""

from __future__ import annotations

from dataclasses import dataclass

from clip_study.metrics_files.record import MetricsFile, Record, meaning


@dataclass(frozen=True, kw_only=True)
class FetchMetrics(Record):
    """The images and classes of the source and of the subset made from it."""

    images_found: int = meaning("image files in the source, every class (count)")
    images_checked: int = meaning("images of the chosen classes fully decoded to check them (count)")
    images_skipped: int = meaning("checked images left out as bad: empty, not an image, truncated... (count)")
    images_used: int = meaning("images in the subset, train and test (count)")
    train_images: int = meaning("images in the train split (count)")
    test_images: int = meaning("images in the test split (count)")
    skipped_by_reason: dict[str, int] = meaning("images skipped, by reason (each reason of "
                                                "clip_study.data.images.REASONS, 0 included) (count)",
                                                keyed_by="reason")
    skipped_per_class: dict[str, int] = meaning("images skipped, by class id (classes without any left out) "
                                                "(count)", keyed_by="class id")
    classes_found: int = meaning("classes in the source (count)")
    classes_kept: int = meaning("classes in the subset (count)")
    dropped_classes: dict[str, int] = meaning("chosen classes dropped for fewer than 2 usable images: their "
                                              "usable images (count)", keyed_by="class id")
    empty_classes: list[str] = meaning("class folders without image files, left out")
    ignored_files: int = meaning("files of the source folder without an image suffix or outside the class "
                                 "folders (count)")
    damaged_samples: int = meaning("lines of damage in a webdataset source: shards missing, not a tar or cut short, "
                                   "samples without an image or a class index (count; their images are left out)")


FILES = (MetricsFile(path="metrics/datasets/<dataset>/fetch.json", stage="fetch", record=FetchMetrics,
                     about="The source's images and classes, and the subset fetch made of them."),)
