"""`mdpr report --html PATH`: one self-contained HTML file of a run, readable offline (no script, no link out).

    inputs = collect_inputs(Path("params.yaml"))       # metrics.json, the PNGs, params, encoder, LLM, library, kept
    write_text("report.html", render_html(inputs))

The page holds the val and test tables, what training kept (epoch, fusion weight, post-hoc tau, where each came
from, and the kept epoch's training metrics), the plots of artifacts/metrics/plots/ embedded as base64 PNG, the
encoder (images.h5 attributes), the LLM (params and where every description of library.jsonl came from: llm,
fallback, offline or file, with the classes that needed a fallback), the dataset's classes per group, and the
params file itself; a failed embedding-space check (metrics.json's space_check) is a warning above every table.
Only metrics.json is required; a part whose file is absent says so.
"""
from __future__ import annotations

import base64
import html
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from pipeline.core import paths
from pipeline.core.errors import UserError
from pipeline.evaluation.report import COLUMNS, LABELS, format_routing
from pipeline.features import store
from pipeline.features.space_verdict import failed_warning
from pipeline.model.selection import describe_kept

PLOTS = {"accuracy_by_group.png": "Accuracy by class-frequency group (test split)",
         "accuracy_by_frequency.png": "Accuracy against training images per class, classes binned (test split)",
         "routing.png": "Where the router looks: routing weight per description dimension (test split)"}
ENCODER_KEYS = ("model", "pretrained", "precision", "image_size", "dataset", "num_classes", "store_dtype",
                "test_views", "train_views")
LLM_KEYS = ("backend", "base_url", "model", "temperature", "max_tokens", "seed")
STYLE = """body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222;background:#fff}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #bbb;padding:.25em .6em;text-align:right}
th:first-child,td:first-child{text-align:left}th{background:#eee}img{max-width:100%;border:1px solid #ddd}
pre{background:#f4f4f4;padding:1em;overflow-x:auto}.missing{color:#a33}h2{border-bottom:1px solid #ccc}
.warning{color:#b00;font-weight:bold}"""


@dataclass
class ReportInputs:
    """What the page shows; None where the file was absent."""

    metrics: dict
    params_text: str | None = None
    plots: dict[str, bytes] = field(default_factory=dict)          # file name -> PNG bytes
    encoder: dict | None = None                                     # images.h5 root attributes
    llm: dict | None = None                                         # the params' llm section
    library: list[dict] | None = None                               # library.jsonl records
    classes: dict | None = None                                     # classes.json
    training: dict | None = None                                    # live/metrics.json (the kept epoch)


def collect_inputs(params_path: Path, metrics_path: Path = paths.METRICS) -> ReportInputs:
    """Read every input that exists (paths relative to the project root); metrics.json is required."""
    if not Path(metrics_path).is_file():
        raise UserError(f"{metrics_path} not found; run `mdpr evaluate` (or `dvc repro`) first.")
    inputs = ReportInputs(json.loads(Path(metrics_path).read_text(encoding="utf-8")))
    if Path(params_path).is_file():
        inputs.params_text = Path(params_path).read_text(encoding="utf-8")
        inputs.llm = (yaml.safe_load(inputs.params_text) or {}).get("llm")
    inputs.plots = {name: (paths.PLOTS / name).read_bytes() for name in PLOTS if (paths.PLOTS / name).is_file()}
    if paths.IMAGES_H5.is_file():
        inputs.encoder = store.read_attrs(paths.IMAGES_H5)
    if paths.LIBRARY.is_file():
        lines = paths.LIBRARY.read_text(encoding="utf-8").splitlines()
        inputs.library = [json.loads(line) for line in lines if line.strip()]
    for attribute, path in (("classes", paths.CLASSES), ("training", paths.LIVE_DIR / "metrics.json")):
        if path.is_file():
            setattr(inputs, attribute, json.loads(path.read_text(encoding="utf-8")))
    return inputs


def render_html(inputs: ReportInputs) -> str:
    """The whole page as one string."""
    metrics = inputs.metrics
    warning = _space_warning(metrics)
    body = ["<h1>MDPR run report</h1>", warning]
    if "kept" in metrics:
        body += ["<h2>What training kept</h2>", _pre(describe_kept(metrics["kept"])), _training(inputs.training)]
    if "val" in metrics:
        body += ["<h2>Val split</h2>", warning, _table(metrics["val"]), _routing(metrics["val"])]
    body += ["<h2>Test split</h2>", warning, _table(metrics), _routing(metrics), "<h2>Plots</h2>"]
    for name, caption in PLOTS.items():
        if name in inputs.plots:
            data = base64.b64encode(inputs.plots[name]).decode("ascii")
            body.append(f"<figure><img alt='{_e(caption)}' src='data:image/png;base64,{data}'>"
                        f"<figcaption>{_e(caption)}</figcaption></figure>")
        else:
            body.append(_missing(f"{paths.PLOTS / name} not found"))
    body += ["<h2>Encoder</h2>", _key_values(inputs.encoder, ENCODER_KEYS, paths.IMAGES_H5),
             "<h2>LLM and description library</h2>", _key_values(inputs.llm, LLM_KEYS, "the llm params"),
             _library(inputs.library), "<h2>Classes</h2>", _classes(inputs.classes), "<h2>Params</h2>",
             _pre(inputs.params_text) if inputs.params_text is not None else _missing("params file not found")]
    return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>MDPR run report</title>"
            f"<style>{STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def _space_warning(metrics: dict) -> str:
    """A failed embedding-space check (metrics.json's space_check) as a warning paragraph; '' when it did not fail."""
    warning = failed_warning(metrics.get("space_check"), "report")
    return f"<p class='warning'>{_e(warning)}</p>" if warning else ""


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _pre(text: str) -> str:
    return f"<pre>{_e(text)}</pre>"


def _missing(what: str) -> str:
    return f"<p class='missing'>{_e(what)}.</p>"


def _table(metrics: dict) -> str:
    """Accuracy (%) per method and column, '-' where a group has no class."""
    head = "<tr><th>method</th>" + "".join(f"<th>{c}</th>" for c in COLUMNS) + "</tr>"
    rows = ["<tr><td>" + _e(LABELS[m]) + "</td>" + "".join(
        f"<td>{100 * metrics[m][c]:.2f}%</td>" if c in metrics[m] else "<td>-</td>" for c in COLUMNS) + "</tr>"
        for m in LABELS if m in metrics]
    return "<table>" + head + "".join(rows) + "</table>"


def _routing(metrics: dict) -> str:
    """A split's routing figures (entropy, top weight, ...), or a note that this metrics.json predates them."""
    if "routing" not in metrics:
        return _missing("no routing figures in this metrics.json (written before they existed: rerun evaluate)")
    return _pre(format_routing(metrics["routing"]))


def _key_values(values: dict | None, keys: tuple[str, ...], source) -> str:
    if values is None:
        return _missing(f"{source} not found")
    rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(values[k])}</td></tr>" for k in keys if k in values)
    return f"<table>{rows}</table>"


def _training(training: dict | None) -> str:
    """The kept epoch's numbers from live/metrics.json (losses, train and val accuracies)."""
    if training is None:
        return _missing(f"{paths.LIVE_DIR / 'metrics.json'} not found")
    rows = [(f"{group}/{name}", value) for group, values in training.items() if isinstance(values, dict)
            for name, value in values.items()]
    cells = "".join(f"<tr><th>{_e(name)}</th><td>{value:.4f}</td></tr>" for name, value in rows)
    return (f"<p>Epochs trained: {_e(training.get('epochs'))}; kept epoch: {_e(training.get('kept_epoch'))}; "
            f"its metrics:</p><table>{cells}</table>")


def _library(records: list[dict] | None) -> str:
    """Where the descriptions came from, with the fallback count and the classes that needed one."""
    if records is None:
        return _missing(f"{paths.LIBRARY} not found")
    sources = Counter(r.get("source") for r in records)
    fallback = sorted({r.get("class_name") for r in records if r.get("source") == "fallback"})
    line = ", ".join(f"{source} {count}" for source, count in sorted(sources.items()))
    shown = ", ".join(fallback[:30]) + (f" and {len(fallback) - 30} more" if len(fallback) > 30 else "")
    return (f"<p>{len(records)} descriptions by source: {_e(line)}. Fallbacks (offline text where the LLM failed): "
            f"{sources.get('fallback', 0)}" + (f", in {_e(shown)}" if fallback else "") + ".</p>")


def _classes(classes: dict | None) -> str:
    if classes is None:
        return _missing(f"{paths.CLASSES} not found")
    groups = Counter(classes.get("groups", []))
    return (f"<p>Dataset {_e(classes.get('dataset'))}: {len(classes['names'])} classes; "
            + ", ".join(f"{_e(g)} {n}" for g, n in groups.items()) + ".</p>")
