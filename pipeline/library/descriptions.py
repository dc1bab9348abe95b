"""Description text: what CLIP encodes, answer cleaning and validation, offline stand-ins.

    from pipeline.library.descriptions import clip_text, count_clip_tokens, check_answer, offline_description
    clip_text("tiger", "orange fur with black stripes")   # 'tiger: orange fur with black stripes'
    check_answer("tiger", "Sure! Here is one:\\n- A tiger has stripes.")   # ('A tiger has stripes.', None)

`clip_text` decides the exact string the embedding stage encodes: the description itself when it already names
the class (case-insensitive, '_' read as a space), else "<class name>: <description>", so descriptor-style file
entries ("black and white stripes") still say which class they describe. Token counts use open_clip's CLIP BPE
tokenizer (the one shared by the OpenAI/LAION CLIP models, context 77 including the start and end tokens).

An LLM answer is usable when, after cleaning, it is not empty, not a refusal, has at least MIN_WORDS words, was not
cut off at max_tokens, and its clip_text fits 77 tokens. The offline stand-in text is built from the class name (and
the contrast class for `differential`) only, so it is identical on every machine.
"""
from __future__ import annotations

import functools
import importlib.util
import re
import sys
import unicodedata
from pathlib import Path

CLIP_CONTEXT = 77
"""CLIP text encoder context length, counting the start-of-text and end-of-text tokens."""

MIN_WORDS = 3
"""LLM answers with fewer words ("Sure.", "Tiger.") are rejected."""

_PREAMBLE = re.compile(r"^(sure|certainly|of course|okay|ok|absolutely|here is|here's|here are)\b", re.I)
_LABEL = re.compile(r"^(description|answer|sentence|output|response|visual description)\s*(\d+\s*)?:\s*", re.I)
_BULLET = re.compile(r"^(\s*([-*\u2022\u2013\u2014>#]+|\(?\d{1,2}[.):]|\(?[a-z][.)])\s+)+", re.I)
_REFUSAL = re.compile(r"^(i'?m sorry|i am sorry|sorry\b|as an ai\b|i cannot\b|i can'?t\b|i can not\b|"
                      r"i'?m unable\b|i am unable\b|i'?m not able\b|i won'?t\b|unfortunately,? i\b)", re.I)
_CHATTER = re.compile(r"\s*(i hope this helps|let me know|feel free to|hope this helps)\b.*$", re.I)
_QUOTES = "\"'`\u201c\u201d\u2018\u2019\u00ab\u00bb"


@functools.lru_cache(maxsize=1)
def _tokenizer():
    """open_clip's SimpleTokenizer (CLIP's BPE), from the imported open_clip, else from its tokenizer module alone."""
    module = sys.modules.get("open_clip.tokenizer") or _tokenizer_module_alone()
    return module.SimpleTokenizer()


def _tokenizer_module_alone():
    """open_clip/tokenizer.py run as a module of its own: `import open_clip` runs the package's __init__, which imports
    torchvision, timm and torch._dynamo (~3 s of start-up for a stage that only counts tokens), while the tokenizer
    module imports ftfy, regex, numpy and torch. The plain import where the package is not laid out as expected."""
    package = importlib.util.find_spec("open_clip")  # locates the package without running its __init__
    path = Path(package.submodule_search_locations[0]) / "tokenizer.py" if package else None
    if path is None or not path.is_file():
        from open_clip import tokenizer

        return tokenizer
    spec = importlib.util.spec_from_file_location("mdpr_open_clip_tokenizer", path)
    module = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@functools.lru_cache(maxsize=65536)
def count_clip_tokens(text: str) -> int:
    """Tokens CLIP's text encoder sees for `text`, counting the start and end tokens (must be <= 77)."""
    return len(_tokenizer().encode(text)) + 2


def normalise_name(name: str) -> str:
    """Match key of a class name: Unicode NFC (composed 'é' = 'e' + combining accent), case-folded, '_' read as a
    space, whitespace collapsed."""
    spaced = " ".join(name.replace("_", " ").split())
    return unicodedata.normalize("NFC", unicodedata.normalize("NFD", spaced).casefold())


def clip_text(class_name: str, text: str) -> str:
    """The exact string CLIP encodes for a description: the text itself if it names the class, else 'name: text'."""
    name = " ".join(class_name.replace("_", " ").split())
    if normalise_name(name) in normalise_name(text):
        return text
    return f"{name}: {text}"


def clean_answer(raw: str | None) -> str:
    """Strip preambles, labels, bullets, numbering, markdown, quotes and closing chatter from an answer.

    Keeps the first content paragraph (its lines joined, as a wrapped sentence), or its first item when it is a list.
    """
    paragraphs = [[line.strip() for line in block.split("\n") if line.strip()]
                  for block in re.split(r"\n\s*\n", (raw or "").replace("\r\n", "\n").replace("\r", "\n"))]
    lines = [line for paragraph in paragraphs for line in paragraph + [""]]  # "" marks a paragraph end
    while lines and (not lines[0] or (_PREAMBLE.match(lines[0]) or lines[0].endswith(":")) and any(lines[1:])):
        lines.pop(0)
    paragraph = lines[:lines.index("")] if "" in lines else lines
    if any(_BULLET.match(line) for line in paragraph):
        paragraph = [next(line for line in paragraph if _BULLET.match(line))]
    text = " ".join(paragraph)
    if _PREAMBLE.match(text) and ":" in text:
        text = text.split(":", 1)[1]
    for _ in range(3):  # labels, bullets and quotes can nest: '1. **Description:** "A tiger ..."'
        text = text.replace("**", "").replace("__", "").strip()
        text = _BULLET.sub("", text)
        text = _LABEL.sub("", text)
        text = _CHATTER.sub("", text).strip()
        if len(text) >= 2 and text[0] in _QUOTES and text[-1] in _QUOTES:
            text = text[1:-1]
        text = text.strip()
    return " ".join(text.split())


def is_refusal(text: str) -> bool:
    """True for answers such as "I'm sorry, ...", "As an AI ...", "I cannot ..."."""
    return bool(_REFUSAL.match(text))


def check_answer(class_name: str, raw: str | None, finish_reason: str | None = "stop") -> tuple[str, str | None]:
    """Clean an LLM answer; return (text, None) when usable, else (text, reason it is rejected)."""
    text = clean_answer(raw)
    if not text:
        return text, "it was empty"
    if is_refusal(text):
        return text, "it was a refusal, not a description"
    if len(text.split()) < MIN_WORDS:
        return text, f"it is too short to be a description (under {MIN_WORDS} words)"
    tokens = count_clip_tokens(clip_text(class_name, text))
    if tokens > CLIP_CONTEXT:
        return text, f"it is too long for CLIP ({tokens} tokens, the limit is {CLIP_CONTEXT})"
    if finish_reason == "length":
        return text, "it was cut off at the token limit"
    return text, None


def reask_messages(messages: list[dict], raw: str | None, reason: str, class_name: str) -> list[dict]:
    """The conversation extended with the rejected answer and a request for a short valid one (a new cache key)."""
    return messages + [
        {"role": "assistant", "content": raw or ""},
        {"role": "user", "content": f"That answer cannot be used: {reason}. Reply with only one sentence of at most "
                                    f"30 words that describes what the \"{class_name}\" looks like and names it, "
                                    f"with no preamble."},
    ]


def truncate_to_fit(class_name: str, text: str) -> str:
    """The longest word prefix of `text` whose clip_text fits CLIP's context (the text itself when it fits)."""
    if count_clip_tokens(clip_text(class_name, text)) <= CLIP_CONTEXT:
        return text
    words = text.split()
    low, high = 0, len(words)  # invariant: words[:low] fits, words[:high + 1] does not
    while low < high:
        mid = (low + high + 1) // 2
        if count_clip_tokens(clip_text(class_name, " ".join(words[:mid]))) <= CLIP_CONTEXT:
            low = mid
        else:
            high = mid - 1
    return " ".join(words[:low])


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


_OFFLINE_VIEWS = ("a photo of", "a picture of", "an image of", "a close-up photo of", "a clear photo of")
_OFFLINE_TEXT = {
    "general_appearance": "{view} {a} {name}, showing the overall shape, size and colours of the {name}.",
    "fine_grained_appearance": ("{view} {a} {name}, showing the textures, patterns and small parts that identify "
                                "the {name}."),
    "functionality": "{view} {a} {name} in use or in action, showing what {a} {name} is for.",
    "context": "{view} {a} {name} in the kind of place where {a} {name} is usually found.",
    "differential": "{view} {a} {name}, not {a_contrast} {contrast}, with the features that set the {name} apart.",
}
_OFFLINE_DIFFERENTIAL_ALONE = "{view} {a} {name}, with the features that set the {name} apart from similar things."


def offline_description(class_name: str, dimension: str, contrast: str | None = None, k: int = 0) -> str:
    """Deterministic stand-in text built from the class name only (varies with dimension, contrast and k)."""
    name = " ".join(class_name.replace("_", " ").split())
    template = _OFFLINE_TEXT[dimension]
    if dimension == "differential" and not contrast:
        template = _OFFLINE_DIFFERENTIAL_ALONE
    contrast = " ".join((contrast or "").replace("_", " ").split())
    view = _OFFLINE_VIEWS[k % len(_OFFLINE_VIEWS)]
    text = template.format(view=view, a=_article(name), name=name, a_contrast=_article(contrast), contrast=contrast)
    if k >= len(_OFFLINE_VIEWS):
        text = f"{text[:-1]} (variant {k + 1})."
    return text[0].upper() + text[1:]
