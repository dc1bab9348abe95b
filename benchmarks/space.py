"""Where the embedding-space check (pipeline/features/space.py) puts same-model and other-model class features.

    .venv/bin/python benchmarks/space.py [--classes 200] [--models mdpr-tiny ViT-B-32] [--smoke]

For each architecture (random init: no weights are downloaded here), the class names of the first ImageNet classes
are encoded twice by the same encoder with other prompt templates (simple vs ensemble: what a file made with other
prompts looks like) and once by another random init (what a file from another model or tag looks like); prints the
mean cosine and top-1 agreement the check computes, against its thresholds. Last line: `SUMMARY space: <model>:
same encoder passes|refused, another init passes|refused; ...` (the check works when the first passes and the
second is refused).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._smoke import parse_args  # noqa: E402
from pipeline.config.data_params import ClipParams  # noqa: E402
from pipeline.features.clip import load_encoder  # noqa: E402
from pipeline.features.space import MIN_MEAN_COSINE, MIN_TOP1_AGREEMENT, space_agreement  # noqa: E402

SMOKE = {"classes": 6, "models": ["mdpr-tiny"]}  # --smoke


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, default=200)
    parser.add_argument("--models", nargs="+", default=["mdpr-tiny", "ViT-B-32"])
    args = parse_args(parser, SMOKE)
    from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES

    names = list(IMAGENET_CLASSNAMES)[:args.classes]
    print(f"thresholds: mean cosine >= {MIN_MEAN_COSINE}, top-1 agreement >= {MIN_TOP1_AGREEMENT:.0%}; "
          f"{len(names)} ImageNet class names")
    verdicts = []
    for model in args.models:
        encoder = load_encoder(ClipParams(model=model, seed=0), "cpu")
        other = load_encoder(ClipParams(model=model, seed=1), "cpu")
        ensemble = encoder.encode_class_names(names, "ensemble", 64)
        same = space_agreement(ensemble, encoder.encode_class_names(names, "simple", 64), names)
        unrelated = space_agreement(ensemble, other.encode_class_names(names, "ensemble", 64), names)
        print(f"{model}: same encoder, other templates: {same} ({'passes' if same.ok else 'refused'}); "
              f"another init: {unrelated} ({'passes' if unrelated.ok else 'refused'})")
        verdicts.append(f"{model}: same encoder {'passes' if same.ok else 'refused'}, another init "
                        f"{'passes' if unrelated.ok else 'refused'}")
    print("SUMMARY space: " + "; ".join(verdicts))


if __name__ == "__main__":
    main()
