"""Text encoding speed: open_clip's padded encode_text vs the trimmed encoding of pipeline/features/text.py.

    .venv/bin/python benchmarks/text.py [--model ViT-B-32] [--texts 5000] [--batch-size 64] [--smoke]

5,000 description strings shaped like the semantic library's (1,000 classes x 5 dimensions; one sentence of
descriptive phrases that names the class, as `clip_text` makes it; ~15-45 CLIP tokens, printed), encoded by a
random-init open_clip model: the padded side tokenises each batch in library order and calls `model.encode_text`
(every prompt padded to 77 tokens; what `Encoder.encode_texts` did before), the trimmed side is `encode_texts`
(sorted by length, each batch run up to its longest prompt). Same batch size, device and threads. The texts are
timed in blocks of `--block` (library order), trimmed then padded back to back, so that the load of a shared
machine weighs on both sides alike; each block is sorted on its own (sorting all 5,000 at once, as the stage
does, trims at least as well). Prints both totals, the largest difference between the two outputs, and a last
line `SUMMARY text: <speed-up>x`.
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._smoke import parse_args
from pipeline.config.data_params import ClipParams
from pipeline.features.clip import load_encoder
from pipeline.features.text import encode_texts
from pipeline.library.descriptions import clip_text, count_clip_tokens

NAMES = Path(__file__).resolve().parents[1] / "data" / "classnames" / "places365_classnames_clean.txt"
OPENINGS = {
    "general_appearance": "{a} {name} is {shape} with",
    "fine_grained_appearance": "Up close, the {name} shows",
    "functionality": "People use the {name} for {use}, so it usually has",
    "context": "The {name} is usually photographed {place}, often with",
    "differential": "Unlike {a_other} {other}, the {name} has",
}
SHAPES = ["a tall narrow shape", "a wide low outline", "a rounded compact body", "a long rectangular form",
          "a large open layout", "a small symmetric shape"]
USES = ["work and storage", "travel", "meeting other people", "play and sport", "cooking", "quiet rest"]
PLACES = ["outdoors in daylight", "indoors under warm lights", "from a distance", "in a crowded street",
          "near water", "at night"]
PHRASES = ["rough grey stone walls", "bright red and white stripes", "a shiny metal surface", "rows of small windows",
           "a pointed roof", "dark wooden beams", "green leaves around the edges", "a smooth polished floor",
           "tall columns at the front", "a curved glass front", "soft yellow light", "a sandy brown ground",
           "people walking in the background", "a high arched ceiling", "painted signs above the door",
           "a cluttered shelf of objects", "thin wires overhead", "a wet reflective surface", "clear blue sky",
           "snow on the top", "a narrow path through the middle", "heavy iron railings", "patterned tiles"]

SMOKE = {"model": "mdpr-tiny", "texts": 12, "batch_size": 4, "block": 6, "device": "cpu"}  # --smoke


def descriptions(count: int, seed: int = 0) -> list[str]:
    """`count` library-like strings: 5 dimensions per class, 2-6 descriptive phrases each, seeded."""
    rng = random.Random(seed)
    names = NAMES.read_text().split("\n")
    names = [n for n in names if n]
    texts = []
    for index in range(count):
        name, dimension = names[(index // 5) % len(names)], list(OPENINGS)[index % 5]
        other = names[rng.randrange(len(names))]
        opening = OPENINGS[dimension].format(a="An" if name[0] in "aeiou" else "A", name=name,
                                             a_other="an" if other[0] in "aeiou" else "a", other=other,
                                             shape=rng.choice(SHAPES), use=rng.choice(USES),
                                             place=rng.choice(PLACES))
        phrases = rng.sample(PHRASES, rng.randint(2, 6))
        text = f"{opening} {', '.join(phrases[:-1])} and {phrases[-1]}."
        texts.append(clip_text(name, text))
    return texts


def padded(encoder, texts: list[str], batch_size: int) -> torch.Tensor:
    """open_clip's encode_text on 77-token padded batches, in input order."""
    out = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            tokens = encoder.tokenizer(texts[start:start + batch_size]).to(encoder.device)
            out.append(F.normalize(encoder.model.encode_text(tokens).float(), dim=-1).cpu())
    return torch.cat(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="ViT-B-32")
    parser.add_argument("--texts", type=int, default=5000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--block", type=int, default=1000, help="texts per timed block (each sorted on its own)")
    args = parse_args(parser, SMOKE)
    encoder = load_encoder(ClipParams(model=args.model, pretrained="none"), args.device)
    texts = descriptions(args.texts)
    tokens = [count_clip_tokens(t) for t in texts]
    print(f"model {args.model} (random init), {len(texts)} descriptions, CLIP tokens min {min(tokens)} / median "
          f"{statistics.median(tokens):.0f} / mean {statistics.mean(tokens):.1f} / max {max(tokens)} (padded to 77), "
          f"batch {args.batch_size}, device {encoder.device}, torch threads {torch.get_num_threads()}")
    print(f"example: {texts[0]!r}")
    encode_texts(encoder.model, encoder.tokenizer, texts[:args.batch_size], args.batch_size, encoder.device)  # warm
    trimmed_s = padded_s = diff = 0.0
    for first in range(0, len(texts), args.block):  # blocks timed back to back: a shared machine's load hits both
        block = texts[first:first + args.block]
        start = time.perf_counter()
        trimmed = encode_texts(encoder.model, encoder.tokenizer, block, args.batch_size, encoder.device)
        middle = time.perf_counter()
        reference = padded(encoder, block, args.batch_size)
        end = time.perf_counter()
        padded_s, trimmed_s = padded_s + end - middle, trimmed_s + middle - start
        diff = max(diff, (torch.from_numpy(trimmed) - reference).abs().max().item())
        print(f"  texts {first:5d}-{first + len(block) - 1:5d}: trimmed {middle - start:6.1f} s, padded "
              f"{end - middle:6.1f} s", flush=True)
    print(f"trimmed (sorted by length, each batch up to its longest prompt): {trimmed_s:7.1f} s "
          f"({len(texts) / trimmed_s:6.1f} texts/s)")
    print(f"padded (open_clip encode_text, 77 tokens):                      {padded_s:7.1f} s "
          f"({len(texts) / padded_s:6.1f} texts/s)")
    print(f"largest |trimmed - padded| over all features: {diff:.1e}" + ("  MISMATCH" if diff > 1e-6 else ""))
    print(f"SUMMARY text: {padded_s / trimmed_s:.2f}x")


if __name__ == "__main__":
    main()
