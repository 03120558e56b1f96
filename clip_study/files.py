"""Files every part of the study writes: key-stable JSON, and npz files that carry no timestamps and
appear complete or not at all."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import IO, Any

import numpy as np

from clip_study.errors import UserError

ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest date zip can store: npz members carry no run time


def write_json(path: str | Path, data: Any) -> None:
    """Write pretty, key-stable JSON (metrics files are committed and diffed in git)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


def read_json(path: str | Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path} not found: run the stage that writes it first (dvc repro)")
    return json.loads(path.read_text())


def npy_member(archive: zipfile.ZipFile, name: str, dtype: np.dtype, shape: tuple[int, ...]) -> IO[bytes]:
    """An open ``<name>.npy`` member of an npz, its header written; the caller writes the C-order bytes.
    Its date is fixed: np.savez stamps the wall-clock time, so the same arrays gave different files
    (and DVC hashes) on every run."""
    entry = archive.open(zipfile.ZipInfo(f"{name}.npy", date_time=ZIP_DATE), "w", force_zip64=True)
    np.lib.format.write_array_header_1_0(
        entry, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": shape})
    return entry


def save_npz(path: Path, **arrays: np.ndarray) -> None:
    """np.savez, but the same arrays always give the same bytes, no array needs pickle, and the file
    appears complete or not at all (written under a temporary name, then renamed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if any(np.asarray(array).dtype.hasobject for array in arrays.values()):
        raise TypeError(f"save_npz: {path.name} would hold Python objects, which only pickle could store")
    temporary = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(temporary, "w") as archive:
        for name, array in arrays.items():
            array = np.ascontiguousarray(array)
            with npy_member(archive, name, array.dtype, array.shape) as entry:
                entry.write(array.tobytes())
    os.replace(temporary, path)
