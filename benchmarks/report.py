"""The markdown view of a benchmark report (the JSON is the record)."""

from __future__ import annotations

from typing import Any


def _num(value: Any, digits: int = 1) -> str:
    return "" if value is None else f"{value:,.{digits}f}"


def markdown_report(report: dict[str, Any]) -> str:
    machine = report.get("machine", {})
    device = ", ".join(machine.get("gpus") or []) or machine.get("cpu", "?")
    lines = [
        f"Machine: {device} ({machine.get('cpu_count')} CPU cores; TF "
        f"{machine.get('tensorflow')}, Keras {machine.get('keras')}, torch "
        f"{machine.get('torch', 'not installed')}); {report.get('created')}.",
        "",
        "| size | implementation | precision | trunk | train img/s (median / best) "
        "| inference img/s (median / best) | peak RSS MiB | peak GPU MiB |",
        "|---|---|---|---|---:|---:|---:|---:|",
    ]
    for res in report["results"].values():
        impl = res["impl"] + "".join(f" +{o}" for o in res["options"])
        lines.append(
            f"| {res['size']} | {impl} | {res['precision']} | {res['trunk']} | "
            f"{_num(res['train_images_per_s'])} / {_num(res['train_images_per_s_best'])} | "
            f"{_num(res['infer_images_per_s'])} / {_num(res['infer_images_per_s_best'])} | "
            f"{_num(res.get('rss_peak_mb_alone', res['rss_peak_mb']), 0)} | "
            f"{_num(res['gpu_peak_mb'], 0)} |"
        )
    lines.append("\nPeak RSS: " + report["settings"].get("memory", ""))
    lines += [
        "",
        "| size | ratio (training images/s) | from medians | from best steps |",
        "|---|---|---:|---:|",
    ]
    for size, entries in report["ratios"].items():
        best = report.get("ratios_best", {}).get(size, {})
        for name, value in entries.items():
            lines.append(f"| {size} | {name} | {value:.2f} | {_num(best.get(name), 2)} |")
    if report.get("svhn_epoch_estimates"):
        lines += [
            "",
            "SVHN recipe epoch (73,257 images, 64 px, batch 64 = 1145 steps; "
            "**extrapolated** from the timed steps, pipeline excluded):",
            "",
            "| variant | seconds per epoch | minutes |",
            "|---|---:|---:|",
        ]
        for row in report["svhn_epoch_estimates"]:
            lines.append(
                f"| {row['variant']} | {row['seconds_per_epoch']:,.0f} | "
                f"{row['seconds_per_epoch'] / 60:,.1f} |"
            )
    for impl, why in report.get("skipped", {}).items():
        lines.append(f"\nSkipped {impl}: {why}")
    lines.append("\nVariants were interleaved round by round; compare ratios within one run.")
    return "\n".join(lines)
