"""Generated test data: small images of every mode, decathlon archives, SVHN .mat files."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image


def write_image(path: Path, *, size=(90, 72), colour=(200, 30, 30), mode="RGB", fmt=None):
    """A small image of a given mode (RGB, L, P, RGBA, LA, I;16) and size (w, h)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    w, h = size
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[:] = colour
    rgb[: h // 3, : w // 3] = 255 - np.array(colour, np.uint8)  # some structure
    image = Image.fromarray(rgb)
    if mode == "L":
        image = image.convert("L")
    elif mode == "P":
        image = image.convert("P", palette=Image.ADAPTIVE, colors=8)
    elif mode == "RGBA":
        image = image.convert("RGBA")
        alpha = np.full((h, w), 255, np.uint8)
        alpha[:, w // 2 :] = 0  # right half transparent
        image.putalpha(Image.fromarray(alpha))
    elif mode == "LA":
        image = image.convert("LA")
    elif mode == "I;16":
        grey = (np.asarray(image.convert("L"), np.uint16) * 257).astype(np.uint16)
        image = Image.fromarray(grey)
        assert image.mode.startswith("I;16"), image.mode
    image.save(path, format=fmt)
    return path


def make_class_folder(root: Path, classes: dict[str, int], *, size=(40, 30)) -> Path:
    colours = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (200, 200, 30)]
    for k, (name, count) in enumerate(classes.items()):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            write_image(root / name / f"{name}_{i:03d}.png", size=size, colour=colours[k % 4])
    return root


DEC_KEYS = (
    "aircraft",
    "cifar100",
    "daimlerpedcls",
    "dtd",
    "gtsrb",
    "imagenet12",
    "omniglot",
    "svhn",
    "ucf101",
    "vgg-flowers",
)


def make_decathlon(
    root: Path, keys=DEC_KEYS, *, per_split=3, classes=3, labelled_test=True, size=(90, 72)
) -> Path:
    """A tiny ``decathlon-1.0`` tree: COCO-style JSON per split, non-square JPEGs."""
    base = root / "decathlon-1.0"
    (base / "annotations").mkdir(parents=True, exist_ok=True)
    for key in keys:
        number = DEC_KEYS.index(key) + 1
        # Category ids deliberately not 1..C in file order, to test the sorted-id rule.
        cat_ids = [number * 10**7 + k for k in (3, 1, 2, 4, 5, 6)[:classes]]
        categories = [
            {"id": c, "name": f"{key}_class{c % 100}", "supercategory": key} for c in cat_ids
        ]
        image_id = number * 10**7 + 200000
        for split in ("train", "val", "test"):
            images, annotations = [], []
            for i in range(per_split * classes):
                cat = cat_ids[i % classes]
                rank = sorted(cat_ids).index(cat)
                file_name = f"data/{key}/{split}/{i:07d}.jpg"
                write_image(
                    base / file_name, size=size, colour=(40 + 70 * rank, 200 - 60 * rank, 90)
                )
                images.append(
                    {"id": image_id, "width": size[0], "height": size[1], "file_name": file_name}
                )
                annotations.append(
                    {
                        "id": image_id,
                        "image_id": image_id,
                        "category_id": cat,
                        "segmentation": [],
                        "area": 1,
                        "bbox": [],
                        "iscrowd": 0,
                    }
                )
                image_id += 1
            doc = {"info": {}, "licenses": [], "images": images, "categories": categories}
            name = split
            if split == "test":
                stripped = dict(doc)
                (base / "annotations" / f"{key}_test_stripped.json").write_text(
                    json.dumps(stripped)
                )
                if not labelled_test:
                    continue
            doc["annotations"] = annotations
            (base / "annotations" / f"{key}_{name}.json").write_text(json.dumps(doc))
    return base


def tar_folder(src: Path, tar_path: Path, arcname: str) -> Path:
    with tarfile.open(tar_path, "w") as tar:
        tar.add(src, arcname=arcname)
    return tar_path


def evil_tar(path: Path, kind: str) -> Path:
    """A tar with one dangerous member: abs, dotdot, symlink or hardlink escaping."""
    with tarfile.open(path, "w") as tar:
        ok = tarfile.TarInfo("decathlon-1.0/annotations/readme.txt")
        ok.size = 2
        tar.addfile(ok, io.BytesIO(b"hi"))
        if kind in ("abs", "dotdot"):
            info = tarfile.TarInfo("/tmp/evil.txt" if kind == "abs" else "../evil.txt")
            info.size = 4
            tar.addfile(info, io.BytesIO(b"evil"))
        else:
            info = tarfile.TarInfo("decathlon-1.0/link")
            info.type = tarfile.SYMTYPE if kind == "symlink" else tarfile.LNKTYPE
            info.linkname = "../../etc/passwd" if kind == "symlink" else "/etc/passwd"
            tar.addfile(info)
    return path


def write_svhn_mat(
    path: Path, n: int, *, seed: int = 0, labels=None
) -> tuple[np.ndarray, np.ndarray]:
    """An SVHN-format MATLAB v5 file: X uint8 [32, 32, 3, N], y [N, 1] in 1..10."""
    from scipy.io import savemat

    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)
    y = rng.integers(1, 11, (n, 1)).astype(np.uint8) if labels is None else labels
    path.parent.mkdir(parents=True, exist_ok=True)
    savemat(path, {"X": x, "y": y})
    return x, y
