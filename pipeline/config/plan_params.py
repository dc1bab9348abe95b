"""Params section `plan`: what `mdpr plan` needs besides the sections it estimates (no stage declares it).

    plan = load_params("params.yaml", PlanParams)       # pipeline.config.params.load_params
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from pipeline.config.schema import check


@dataclass(frozen=True)
class PlanParams:
    """Section `plan`: prices and assumptions of `mdpr plan`. No stage declares it: it never invalidates an output."""

    SECTION = "plan"
    price_input_per_million: Optional[float] = None
    """Price of one million prompt tokens in your currency (e.g. 0.15 for gpt-4o-mini at OpenAI in USD); null = no
    price shown."""
    price_output_per_million: Optional[float] = None
    """Price of one million completion tokens (e.g. 0.60 for gpt-4o-mini); null = no price shown."""
    request_latency_s: float = 2.0
    """Assumed seconds a server takes to answer one request, for the wall time at llm.concurrency requests in
    flight (the time under llm.requests_per_minute / tokens_per_minute is computed from those limits)."""
    probe_images: int = 8
    """Images (random pixels at the encoder's input size) encoded on runtime.device to time the encoder; 0 = no
    measurement and no device-time estimate."""

    def validate(self) -> None:
        for key in ("price_input_per_million", "price_output_per_million"):
            check(self, key, getattr(self, key) is None or getattr(self, key) >= 0, "null or a number >= 0")
        check(self, "request_latency_s", self.request_latency_s > 0, "a number > 0")
        check(self, "probe_images", 0 <= self.probe_images <= 256, "an integer in 0..256")
