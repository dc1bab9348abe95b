"""What `dvc repro` will do and cost, per stage, before it runs: images, texts, LLM requests, tokens, price, disk, time.

    plan = make_plan(sections)         # sections: {"dataset": DatasetParams, ..., "plan": PlanParams} (every section)
    print(format_plan(plan))           # or json.dumps(plan): what `mdpr plan --json` prints

Every figure is for running each stage from scratch with the params given (whether DVC would skip a stage is for
`dvc status` to say), except the LLM requests, which are those the answer cache under llm.cache_dir does not hold
yet (pipeline/library/request_plan.py). Nothing is written and no request is sent; the answer cache is opened only
when it exists. Device time: the encoder timed on runtime.device on a few random images and texts
(pipeline/features/costs.py) times the images and texts to encode; train and evaluate are not timed here (see
benchmarks/RESULTS.md for their step and scoring times at C = 1,000 and 8,142).
"""
from __future__ import annotations

import math
from pathlib import Path

from pipeline.core import paths
from pipeline.core.errors import UserError
from pipeline.data.outline import Outline, dataset_outline
from pipeline.features.clip import class_prompts
from pipeline.features.costs import cache_bytes, encoder_shape, image_views, time_encoder
from pipeline.library.answer_cache import open_cache
from pipeline.library.build import record_maker
from pipeline.library.confusion import read_contrasts
from pipeline.library.request_plan import RequestPlan, plan_requests, price, wall_time_s

PROBE_TEXT = "A {} seen clearly in a photo, with the shape, colours, markings and surroundings that identify it."
"""A description of typical length (~25 CLIP tokens) for timing the text encoder."""


def make_plan(sections: dict) -> dict:
    """The plan as a JSON-ready dict (see the module docstring)."""
    dataset, clip, embed, runtime = (sections[k] for k in ("dataset", "clip", "embed", "runtime"))
    outline = dataset_outline(dataset)
    classes, views = len(outline.names), len(sections["library"].dimensions) * sections["library"].per_dimension
    dim, _ = encoder_shape(clip)
    sizes = cache_bytes(outline.splits, classes, views, dim, embed)
    texts = {"embed_classes": classes * len(class_prompts("x", clip.templates)), "embed_library": classes * views}
    encode = {"embed_images": image_views(outline.splits, embed), **texts}
    timing = _timing(sections, outline)
    per_item = {"embed_images": "s_per_image", "embed_classes": "s_per_text", "embed_library": "s_per_text"}
    stages = {"prepare": {"images_listed": outline.images},
              "embed_images": {"images": outline.images, "views": encode["embed_images"], "bytes": sizes["images.h5"]},
              "embed_classes": {"texts": texts["embed_classes"], "bytes": sizes["classes.h5"]},
              "confusion": {"train_images": outline.splits.get("train", 0)},
              "library": _library(sections, outline),
              "embed_library": {"texts": texts["embed_library"], "bytes": sizes["library.h5"]},
              "train": {"epochs": sections["train"].epochs, "bytes": sizes["model.pt"],
                        "steps": sections["train"].epochs * math.ceil(outline.splits.get("train", 0)
                                                                      / sections["train"].batch_size)}}
    for stage, key in per_item.items():
        stages[stage]["device_s"] = None if timing is None else encode[stage] * timing[key]
    return {"dataset": {"name": dataset.name, "classes": classes, "splits": outline.splits, "exact": outline.exact,
                        "source": outline.source},
            "stages": stages, "device": timing,
            "disk_bytes": sum(sizes.values()) + stages["library"].get("cache_bytes_added", 0)}


def _timing(sections: dict, outline: Outline) -> dict | None:
    probe = sections["plan"].probe_images
    if not probe:
        return None
    texts = [PROBE_TEXT.format(name) for name in (outline.names * probe)[:probe]]
    return time_encoder(sections["clip"], sections["runtime"], probe, texts)


def _library(sections: dict, outline: Outline) -> dict:
    """The library stage's LLM requests (openai backend), their tokens, time and price, and the answer cache."""
    llm, lib, plan_params = sections["llm"], sections["library"], sections["plan"]
    names = outline.names
    out = {"backend": llm.backend, "descriptions": len(names) * len(lib.dimensions) * lib.per_dimension}
    if llm.backend != "openai":
        return {**out, "requests": 0}
    contrasts, exact = _contrasts(names, outline.exact)
    maker = record_maker(names, contrasts, llm, lib, outline.taxonomy)
    cache_dir = Path(llm.cache_dir)
    cache = open_cache(llm.cache_dir) if cache_dir.is_dir() else None
    try:
        entries = len(cache) if cache is not None else 0
        requests = plan_requests(names, maker, cache if cache is not None else {})
    finally:
        if cache is not None:
            cache.close()
    now = sum(p.stat().st_size for p in cache_dir.rglob("*") if p.is_file()) if cache is not None else 0
    per_entry = now / entries if entries else 1024  # bytes per cached answer (1 KiB assumed for a new cache)
    return {**out, **_request_fields(requests), "exact": exact, "model": llm.model,
            "wall_s": wall_time_s(requests, llm.requests_per_minute, llm.tokens_per_minute, llm.concurrency,
                                  plan_params.request_latency_s),
            "price": price(requests, plan_params.price_input_per_million, plan_params.price_output_per_million),
            "cache_dir": llm.cache_dir, "cache_entries": entries, "cache_bytes": now,
            "cache_bytes_added": round(requests.requests * per_entry)}


def _request_fields(requests: RequestPlan) -> dict:
    return {"requests": requests.requests, "cache_hits": requests.cache_hits, "duplicates": requests.duplicates,
            "reasks_at_most": requests.reasks_at_most, "prompt_tokens": requests.prompt_tokens,
            "completion_tokens_max": requests.completion_tokens_max,
            "completion_tokens_estimate": requests.completion_tokens_estimate}


def _contrasts(names: list[str], exact: bool) -> tuple[list[str | None], bool]:
    """The differential prompts' contrast classes from confusion.json when it matches these classes, else the next
    class's name as a stand-in of typical length (the counts are then estimates)."""
    if exact and paths.CONFUSION.is_file():
        try:
            return read_contrasts(paths.CONFUSION, names), True
        except UserError:
            pass
    return [names[(c + 1) % len(names)] for c in range(len(names))], False


def format_plan(plan: dict) -> str:
    """The plan for the terminal: one line per stage, then the totals."""
    data, stages, timing = plan["dataset"], plan["stages"], plan["device"]
    splits = ", ".join(f"{split} {n:,}" for split, n in data["splits"].items())
    lines = [f"plan: {data['name']}, {data['classes']:,} classes, {splits} (from {data['source']})"]
    lines.append(f"  prepare        lists {stages['prepare']['images_listed']:,} images")
    embed = stages["embed_images"]
    lines.append(f"  embed_images   encodes {embed['views']:,} image views of {embed['images']:,} images"
                 f"{_device(embed['device_s'])} -> images.h5 {_size(embed['bytes'])}")
    lines.append("  " + _texts_line(stages, "embed_classes", "prompts", "classes.h5"))
    lines.append(f"  confusion      scores {stages['confusion']['train_images']:,} train images zero-shot")
    lines.append("  library        " + _library_line(stages["library"]))
    lines.append("  " + _texts_line(stages, "embed_library", "descriptions", "library.h5"))
    train = stages["train"]
    lines.append(f"  train          {train['epochs']} epochs x {train['steps'] // max(1, train['epochs']):,} steps "
                 f"-> model.pt {_size(train['bytes'])} (time: benchmarks/RESULTS.md)")
    if timing:
        lines.append(f"device: {timing['device']} ({timing['precision']}), measured now on {timing['probe_images']} "
                     f"random images ({timing['s_per_image'] * 1e3:.1f} ms each) and {timing['probe_texts']} texts "
                     f"({timing['s_per_text'] * 1e3:.1f} ms each); JPEG decoding not included")
    lines.append(f"disk: {_size(plan['disk_bytes'])} of caches and answers (DVC keeps another copy of each output in "
                 f"its cache)")
    return "\n".join(lines)


def _texts_line(stages: dict, stage: str, what: str, output: str) -> str:
    return (f"{stage:<14} encodes {stages[stage]['texts']:,} {what}{_device(stages[stage]['device_s'])} -> {output} "
            f"{_size(stages[stage]['bytes'])}")


def _library_line(lib: dict) -> str:
    if lib["backend"] != "openai":
        return f"{lib['descriptions']:,} descriptions from backend {lib['backend']}: no LLM request"
    estimate = "" if lib["exact"] else " (estimated: confusion.json or the class list is not available yet)"
    completion = lib["completion_tokens_estimate"]
    out = f"~{completion:,} (mean of cached answers), " if completion is not None else ""
    line = (f"{lib['requests']:,} LLM requests to send ({lib['cache_hits']:,} answered by the cache, "
            f"{lib['duplicates']:,} duplicates; re-asks of rejected answers: up to {lib['reasks_at_most']:,} more)"
            f"{estimate}; tokens: {lib['prompt_tokens']:,} prompt (characters / 4), {out}at most "
            f"{lib['completion_tokens_max']:,} completion; {_duration(lib['wall_s'])} at the configured pacing")
    cost = lib["price"]
    if cost is not None:
        estimate = "" if cost["estimate"] is None else f"~{cost['estimate']:.2f}, "
        line += f"; price {estimate}at most {cost['at_most']:.2f} (plan.price_*_per_million)"
    return line + f"; answer cache {lib['cache_dir']}: {lib['cache_entries']:,} answers, {_size(lib['cache_bytes'])}"


def _device(seconds: float | None) -> str:
    return "" if seconds is None else f" (~{_duration(seconds)} on this device)"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def _size(count: int) -> str:
    for unit, scale in (("GB", 2 ** 30), ("MB", 2 ** 20), ("KB", 2 ** 10)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} B"
