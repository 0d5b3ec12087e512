"""The in-domain score's histogram for ``eval --report``: a domain's own test images against
the other trained domains' test images, all scored by that domain, with the AUROC.

Files: ``in_domain.csv`` (shared bins: one count column for its own images, one per other
domain; the first and last bins also count the images beyond them), ``in_domain.json`` (the score, the threshold, the AUROC against each other domain
and against all of them, the share of own images that pass) and ``in_domain.png``
(matplotlib, Agg). No TensorFlow.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np

BINS = 40


def auroc(inside: np.ndarray, outside: np.ndarray) -> float:
    """P(an own image scores above another domain's image), ties counted half (the
    Mann-Whitney U statistic over the pooled ranks)."""
    from scipy.stats import rankdata

    inside, outside = np.asarray(inside, np.float64), np.asarray(outside, np.float64)
    if inside.size == 0 or outside.size == 0:
        return float("nan")
    ranks = rankdata(np.concatenate([inside, outside]))  # ties: their mean rank
    u = ranks[: inside.size].sum() - inside.size * (inside.size + 1) / 2
    return float(u / (inside.size * outside.size))


@dataclasses.dataclass(frozen=True)
class ScoreHistogram:
    """One domain's scores of its own ``split`` images and of every other domain's."""

    domain: str
    split: str
    score: str
    threshold: float
    own: np.ndarray
    others: Mapping[str, np.ndarray]

    def aurocs(self) -> dict[str, float]:
        out = {name: auroc(self.own, s) for name, s in self.others.items()}
        if self.others:
            out["all other domains"] = auroc(self.own, np.concatenate(list(self.others.values())))
        return out

    def bins(self) -> np.ndarray:
        """Shared bin edges around the domain's own scores: from 4 own spreads below them
        (or the other images' lowest, when higher) to the highest score; the images beyond
        the edges are counted in the first and last bins (far-off images would otherwise
        squeeze the domain's own scores into one bin)."""
        values = np.concatenate([self.own, *self.others.values()])
        own_low, own_high = np.quantile(self.own, [0.005, 0.995])
        low = max(float(np.quantile(values, 0.005)), own_low - 4 * (own_high - own_low))
        low = min(low, self.threshold)
        high = max(float(np.quantile(values, 0.995)), self.threshold)
        return np.linspace(low, high if high > low else low + 1.0, BINS + 1)

    def summary(self) -> dict[str, object]:
        return {
            "domain": self.domain,
            "split": self.split,
            "score": self.score,
            "threshold": self.threshold,
            "images": {self.domain: int(self.own.size)}
            | {n: int(s.size) for n, s in self.others.items()},
            "own_pass": float((self.own >= self.threshold).mean()) if self.own.size else None,
            "auroc": self.aurocs(),
        }

    def write(self, out_dir: Path) -> dict[str, Path]:
        """The three files into ``out_dir``; returns them by name."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        files = {
            "in_domain.csv": out_dir / "in_domain.csv",
            "in_domain.json": out_dir / "in_domain.json",
            "in_domain.png": out_dir / "in_domain.png",
        }
        edges = self.bins()
        columns = {self.domain: self.own, **self.others}
        counts = {
            n: np.histogram(np.clip(s, edges[0], edges[-1]), edges)[0] for n, s in columns.items()
        }
        with open(files["in_domain.csv"], "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["bin_from", "bin_to", *columns])
            for i in range(BINS):
                row = [f"{edges[i]:.6g}", f"{edges[i + 1]:.6g}"]
                writer.writerow(row + [int(counts[n][i]) for n in columns])
        files["in_domain.json"].write_text(json.dumps(self.summary(), indent=1))
        self.plot(files["in_domain.png"], edges)
        return files

    def plot(self, path: Path, edges: np.ndarray) -> Path:
        import matplotlib

        matplotlib.use("Agg", force=False)
        from matplotlib.figure import Figure

        fig = Figure(figsize=(7.0, 4.2), dpi=100)
        ax = fig.subplots()
        bins = [float(e) for e in edges]
        clipped = {n: np.clip(s, edges[0], edges[-1]) for n, s in self.others.items()}
        if clipped:
            ax.hist(
                np.concatenate(list(clipped.values())),
                bins,
                density=True,
                alpha=0.55,
                color="#c0504d",
                label="other domains' images",
            )
        ax.hist(
            np.clip(self.own, edges[0], edges[-1]),
            bins,
            density=True,
            alpha=0.55,
            color="#1f4e8c",
            label=f"{self.domain}'s own images",
        )
        ax.axvline(self.threshold, color="black", linestyle="--", label="threshold")
        pooled = self.aurocs().get("all other domains")
        title = f"{self.domain}: {self.score} score, {self.split} images"
        if pooled is not None:
            title += f" (AUROC {pooled:.3f})"
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("score (higher = more like the domain; the edge bins hold those beyond)")
        ax.set_ylabel("share of images (density)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(path)
        return path
