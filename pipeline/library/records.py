"""One library.jsonl record per description, and the slots of a class (V = len(dimensions) x per_dimension).

    maker = RecordMaker(llm_params, library_params, contrasts)
    maker.make(class_index, "tiger", slot=0, text="orange fur with black stripes", source="llm")
    maker.offline(class_index, "tiger")           # all V deterministic offline records of one class

Slot of a description = dimension position x per_dimension + k. Record fields: see `make`. A contrast class is the
class's most-confused class (confusion.json); it is named in `differential` records only, and not for file imports
(their text was not written against this run's contrast).
"""
from __future__ import annotations

from pipeline.config.library_params import LibraryParams, LLMParams
from pipeline.library.descriptions import clip_text, count_clip_tokens, offline_description
from pipeline.library.prompts import load_template


class RecordMaker:
    """Builds records for one run (knows the params, the contrasts and the template shas)."""

    def __init__(self, llm: LLMParams, lib: LibraryParams, contrasts: list[str | None]):
        self.llm, self.lib, self.contrasts = llm, lib, contrasts
        self.templates = {dimension: load_template(dimension) for dimension in lib.dimensions}
        self.slots = [(position * lib.per_dimension + k, dimension, k)
                      for position, dimension in enumerate(lib.dimensions) for k in range(lib.per_dimension)]

    def make(self, class_index: int, class_name: str, slot: int, text: str, source: str,
             tokens_in: int = 0, tokens_out: int = 0) -> dict:
        """One library.jsonl record."""
        dimension = self.lib.dimensions[slot // self.lib.per_dimension]
        contrast = self.contrasts[class_index] if dimension == "differential" and source != "file" else None
        return {"class_index": class_index, "class_name": class_name, "dimension": dimension, "slot": slot,
                "text": text, "contrast_class": contrast, "source": source,
                "model": self.llm.model if source in ("llm", "fallback") else None,
                "prompt_sha": None if source == "file" else self.templates[dimension].sha,
                "tokens_in": tokens_in, "tokens_out": tokens_out,
                "clip_tokens": count_clip_tokens(clip_text(class_name, text))}

    def messages(self, class_index: int, class_name: str, slot: int) -> list[dict]:
        """The chat messages asking for one slot's description (its dimension's template, description k of n)."""
        _, dimension, k = self.slots[slot]
        return self.templates[dimension].messages(class_name, self.contrasts[class_index], k, self.lib.per_dimension)

    def offline_text(self, class_index: int, class_name: str, slot: int) -> str:
        """The deterministic stand-in text of one slot."""
        _, dimension, k = self.slots[slot]
        return offline_description(class_name, dimension, self.contrasts[class_index], k)

    def offline(self, class_index: int, class_name: str) -> list[dict]:
        """All V offline records of one class."""
        return [self.make(class_index, class_name, slot, self.offline_text(class_index, class_name, slot), "offline")
                for slot, _, _ in self.slots]
