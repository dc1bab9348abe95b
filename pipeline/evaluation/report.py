"""The results tables (and routing figures) printed by `mdpr evaluate` and `mdpr report`.

    print(format_report(json.loads(Path("artifacts/metrics/metrics.json").read_text())))
"""
from __future__ import annotations

from pipeline.features.space_verdict import failed_warning
from pipeline.model.selection import describe_kept

COLUMNS = ("top1", "top5", "mean_class", "many", "medium", "few")
LABELS = {"zero_shot": "zero-shot CLIP", "zero_shot_library": "zero-shot + library", "base": "base (prompts)",
          "semantic": "semantic (router)", "mdpr": "MDPR (fused)"}


def format_table(metrics: dict) -> str:
    """Accuracy (%) per method and column; '-' where a group has no class."""
    methods = [m for m in LABELS if m in metrics]
    lines = [f"{'method':<22}" + "".join(f"{c:>11}" for c in COLUMNS)]
    lines.append("-" * len(lines[0]))
    for method in methods:
        cells = [f"{100 * metrics[method][c]:>10.2f}%" if c in metrics[method] else f"{'-':>11}" for c in COLUMNS]
        lines.append(f"{LABELS[method]:<22}" + "".join(cells))
    return "\n".join(lines)


def format_routing(block: dict) -> str:
    """metrics.json's `routing` block of one split (pipeline/evaluation/routing.py) as two lines."""
    entropy = f"entropy {block['entropy']:.3f} (1 = flat), " if "entropy" in block else ""
    dims = ", ".join(f"{dim} {weight:.3f}" for dim, weight in block["dimensions"]["all"].items())
    return (f"routing (true class): {entropy}top weight {block['top_weight']:.3f}, effective descriptions "
            f"{block['effective_descriptions']:.2f}, image dependence (std) {block['image_std']['mean']:.3f}\n"
            f"routing per dimension: {dims}")


def format_split(metrics: dict) -> str:
    """One split's table, and its routing lines when metrics.json has them."""
    return format_table(metrics) + (f"\n{format_routing(metrics['routing'])}" if "routing" in metrics else "")


def format_report(metrics: dict, where: str = "evaluate") -> str:
    """The val table (when metrics.json has one), the test table, each with its routing, and what training kept; a
    `warning:` line (from `where`) first and last when the run's embedding-space check failed (metrics.json's
    space_check)."""
    warning = failed_warning(metrics.get("space_check"), where)
    parts = [warning] if warning else []
    parts += [f"val split:\n{format_split(metrics['val'])}\n\ntest split:"] if "val" in metrics else []
    parts.append(format_split(metrics))
    if "kept" in metrics:
        parts.append(describe_kept(metrics["kept"]))
    if warning:
        parts.append(warning)
    return "\n".join(parts)
