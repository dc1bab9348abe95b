"""Write the five-dimension description library (params: llm, library).

    mdpr library            # DVC stage `library` (and $llm.api_key_env for the openai backend)

Reads classes.json (class names, and each class's taxonomy where the dataset gives one), confusion.json (each
class's most-confused class, named in the `differential` prompt) and prompts/<dimension>.txt; writes
artifacts/library/library.jsonl. LLM answers are cached under llm.cache_dir (outside the DVC outs): a rerun makes
zero requests and an interrupted run resumes. Prints a one-line
summary (requests, cache hits, retries, fallbacks by cause and the classes that needed them). When more than
library.max_fallback_fraction of the descriptions fell back (a server down, a wrong URL, unusable answers), it fails
with exit status 2 and writes nothing, so `dvc repro` runs it again; the answers received stay cached.
"""
from __future__ import annotations

from pipeline.config.library_params import LibraryParams, LLMParams
from pipeline.config.params import load_sections
from pipeline.core import paths
from pipeline.data import manifest
from pipeline.library.build import build_library, check_fallbacks, format_summary
from pipeline.library.confusion import read_contrasts
from pipeline.library.io import write_library


def run(params_path: str = "params.yaml") -> dict:
    """Build the library, write it atomically, print the summary; returns the summary."""
    llm, lib = load_sections(params_path, LLMParams, LibraryParams)
    classes = manifest.read_classes(paths.CLASSES)
    class_names = classes["names"]
    contrasts = read_contrasts(paths.CONFUSION, class_names)
    records, summary = build_library(class_names, contrasts, llm, lib, taxonomy=classes.get("taxonomy"))
    check_fallbacks(summary, llm, lib)
    write_library(paths.LIBRARY, records)
    print(format_summary(summary, str(paths.LIBRARY)))
    return summary
