"""The file of the fetch_shift stage: what it found in a shift set's source, how its classes matched the dataset
it shifts from, and what it kept."""

from __future__ import annotations

from dataclasses import dataclass

from clip_study.metrics_files.record import MetricsFile, Record, meaning


@dataclass(frozen=True, kw_only=True)
class ShiftFetchMetrics(Record):
    """The images and classes of a shift set's source, their match to the source dataset's classes, and the
    test-only subset made of them."""

    images_found: int = meaning("image files in the source, every class (count)")
    images_checked: int = meaning("images of the matched classes fully decoded to check them (count)")
    images_skipped: int = meaning("checked images left out as bad: empty, not an image, truncated... (count)")
    test_images: int = meaning("images in the subset, all of them test images (count)")
    skipped_by_reason: dict[str, int] = meaning("images skipped, by reason (each reason of "
                                                "clip_study.data.images.REASONS, 0 included) (count)",
                                                keyed_by="reason")
    skipped_per_class: dict[str, int] = meaning("images skipped, by class id (classes without any left out) "
                                                "(count)", keyed_by="class id")
    classes_found: int = meaning("classes in the source (count)")
    classes_matched: int = meaning("classes of the source that match a class of the dataset it shifts from (count)")
    classes_unmatched: int = meaning("classes of the source that match none, left out (count)")
    unmatched_classes: list[str] = meaning("the ids of the classes left out for matching none")
    classes_kept: int = meaning("classes in the subset: the matched ones with a usable image (count)")
    dropped_classes: list[str] = meaning("matched classes dropped for having no usable image (ids)")
    source_classes: int = meaning("classes of the dataset it shifts from (count)")
    source_classes_covered: int = meaning("of those, the classes some kept class matches: the classifiers' scores "
                                          "are read on these alone (count)")
    map_lines_unused: int = meaning("lines of the class map naming an ImageNet class the source dataset's subset "
                                    "does not hold (count; 0 without a map)")
    empty_classes: list[str] = meaning("class folders without image files, left out")
    ignored_files: int = meaning("files of the source folder without an image suffix or outside the class "
                                 "folders (count)")
    damaged_samples: int = meaning("lines of damage in a webdataset source: shards missing, not a tar or cut short, "
                                   "samples without an image or a class index (count; their images are left out)")


FILES = (MetricsFile(path="metrics/datasets/<shift>/fetch.json", stage="fetch_shift", record=ShiftFetchMetrics,
                     about="A shift set's images and classes, their match to the dataset it shifts from, and the "
                           "test-only subset fetch_shift made of them."),)
