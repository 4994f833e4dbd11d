"""RD plots: the candidate's curve with the baselines' curves, to PNG or SVG."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # never a display: plots are files

from matplotlib import pyplot as plt
from matplotlib import ticker

METRIC_LABELS = {"psnr_y": "PSNR-Y (dB, mean of frames)", "vmaf": "VMAF", "ssim_y": "SSIM-Y"}


def plot_rd(
    path: Path,
    curves: Mapping[str, Sequence[tuple[float, float]]],
    *,
    metric: str = "psnr_y",
    title: str = "",
    highlight: str | None = None,
) -> Path:
    """Write an RD plot of `curves` ({label: [(bits/s, quality), ...]}) to `path`.

    The file type follows the suffix (.png or .svg). The `highlight` curve is drawn
    thicker (the candidate).
    """
    if path.suffix.lower() not in {".png", ".svg"}:
        raise ValueError(f"{path}: plots are written as .png or .svg")
    figure, axes = plt.subplots(figsize=(7.0, 4.5), dpi=120)
    try:
        for label, points in curves.items():
            ordered = sorted(p for p in points if p[1] != float("inf"))
            if not ordered:
                continue
            rates = [r / 1e3 for r, _ in ordered]
            values = [q for _, q in ordered]
            wide = label == highlight
            axes.plot(
                rates,
                values,
                marker="o",
                linewidth=2.6 if wide else 1.4,
                markersize=5 if wide else 3.5,
                label=label,
                zorder=3 if wide else 2,
            )
        axes.set_xscale("log")
        axes.xaxis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:g}"))
        axes.xaxis.set_minor_formatter(ticker.NullFormatter())
        axes.set_xlabel("bitrate (kbit/s, log scale)")
        axes.set_ylabel(METRIC_LABELS.get(metric, metric))
        axes.grid(True, which="both", alpha=0.3)
        axes.legend()
        if title:
            axes.set_title(title)
        figure.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path)
    finally:
        plt.close(figure)
    return path
