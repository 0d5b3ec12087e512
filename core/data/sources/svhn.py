"""SVHN cropped digits from the official MATLAB files (``train_32x32.mat`` ...).

The official files are MATLAB v5: ``X`` is uint8 [32, 32, 3, N] and ``y`` is [N, 1] with
labels 1..10, where 10 stands for the digit 0. We map 10 -> 0 so class index = digit.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.config import DomainSpec
from core.data.pipeline.datasource import ArrayDomainData
from core.data.pipeline.file_dataset import DataError

OFFICIAL_URL = "http://ufldl.stanford.edu/housenumbers/"
SVHN_FILES: dict[str, str] = {
    "train": "train_32x32.mat",
    "test": "test_32x32.mat",
    "extra": "extra_32x32.mat",
}
# The md5 sums torchvision checks these files against (torchvision/datasets/svhn.py).
SVHN_MD5: dict[str, str] = {
    "train_32x32.mat": "e26dedcc434d2e4c54c9b2d4a06d8373",
    "test_32x32.mat": "eb5a983be6a315427106f1b164d9cef3",
    "extra_32x32.mat": "a93ce644f1a588dc4d68dda5feec44a7",
}
SVHN_SIZES = {"train": 73257, "test": 26032, "extra": 531131}
# Per-channel statistics of the decathlon's SVHN (reference table).
SVHN_MEAN = (0.4377, 0.4438, 0.4728)
SVHN_STD = (0.1980, 0.2010, 0.1970)
NAME = "svhn_cropped"
DIGITS = tuple(str(d) for d in range(10))


def svhn_spec(image_size: int | None = None) -> DomainSpec:
    """32x32 digits, resized to the model's input (64 px by default), center crop, no flip."""
    size = image_size or 64
    return DomainSpec(
        name=NAME,
        class_names=DIGITS,
        mean=SVHN_MEAN,
        std=SVHN_STD,
        image_size=size,
        resize_shorter=size,
        random_crop=False,
        allow_flip=False,
    )


def read_svhn_mat(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One official .mat file -> (uint8 images [N, 32, 32, 3], int32 digits [N] in 0..9)."""
    from scipy.io import loadmat

    path = Path(path)
    try:
        mat = loadmat(path, variable_names=["X", "y"])
    except FileNotFoundError:
        raise DataError(f"SVHN file missing: {path}") from None
    except NotImplementedError:
        raise DataError(f"{path} is a MATLAB v7.3 file; the official SVHN files are v5.") from None
    except Exception as exc:  # noqa: BLE001 - scipy raises many kinds on a bad file
        raise DataError(f"Cannot read {path} as a MATLAB file: {exc}") from None
    if "X" not in mat or "y" not in mat:
        raise DataError(f"{path} has no 'X' and 'y' variables; it is not an SVHN .mat file.")
    x, y = mat["X"], np.asarray(mat["y"]).reshape(-1)
    if x.ndim != 4 or x.shape[2] != 3 or x.shape[3] != y.size:
        raise DataError(
            f"{path}: 'X' must be [32, 32, 3, N] with N = len(y). "
            f"Received: X{tuple(x.shape)}, y{tuple(np.shape(mat['y']))}"
        )
    if x.dtype != np.uint8:
        raise DataError(f"{path}: 'X' must be uint8. Received: dtype={x.dtype}")
    if y.size and (y.min() < 1 or y.max() > 10 or not np.all(np.equal(np.mod(y, 1), 0))):
        bad = sorted({float(v) for v in y[(y < 1) | (y > 10) | (np.mod(y, 1) != 0)][:10]})
        raise DataError(f"{path}: labels must be 1..10 (10 = digit 0). Received: {bad}")
    labels = (y.astype(np.int64) % 10).astype(np.int32)
    images = np.ascontiguousarray(np.transpose(x, (3, 0, 1, 2)))
    return images, labels


def svhn_present(folder: Path | None) -> bool:
    return folder is not None and all(
        (Path(folder) / SVHN_FILES[s]).is_file() for s in ("train", "test")
    )


def svhn_sizes(folder: Path, *, val_fraction: float = 0.1) -> dict[str, int]:
    """Split sizes read from the files' headers (no image data is loaded)."""
    from scipy.io import whosmat

    sizes = {}
    for split in ("train", "test"):
        path = Path(folder) / SVHN_FILES[split]
        try:
            shapes = {name: shape for name, shape, _ in whosmat(path)}
            sizes[split] = int(shapes["X"][3])
        except Exception:  # noqa: BLE001 - unreadable header: estimate
            sizes[split] = SVHN_SIZES[split]
    n_val = int(round(sizes["train"] * val_fraction))
    return {"train": sizes["train"] - n_val, "val": n_val, "test": sizes["test"]}


def load_svhn(
    folder: Path,
    *,
    image_size: int | None = None,
    include_extra: bool = False,
    val_fraction: float = 0.1,
    seed: int = 0,
) -> ArrayDomainData:
    """Train (minus a seeded validation share), val, and the official test set."""
    folder = Path(folder)
    if not svhn_present(folder):
        raise DataError(
            f"SVHN needs {SVHN_FILES['train']} and {SVHN_FILES['test']} in {folder}. "
            f"Download them from {OFFICIAL_URL} or use download_svhn()."
        )
    x, y = read_svhn_mat(folder / SVHN_FILES["train"])
    order = np.random.default_rng(seed).permutation(y.size)
    n_val = int(round(y.size * val_fraction))
    val_idx, train_idx = np.sort(order[:n_val]), np.sort(order[n_val:])
    train = (x[train_idx], y[train_idx])
    if include_extra:
        ex, ey = read_svhn_mat(folder / SVHN_FILES["extra"])
        train = (np.concatenate([train[0], ex]), np.concatenate([train[1], ey]))
    splits = {"train": train, "test": read_svhn_mat(folder / SVHN_FILES["test"])}
    if n_val:
        splits["val"] = (x[val_idx], y[val_idx])
    return ArrayDomainData(svhn_spec(image_size), splits)
