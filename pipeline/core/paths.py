"""Where every stage reads and writes, relative to the project root (the same paths as in dvc.yaml).

Outputs are relative paths: commands run from the project root (DVC runs them there). Files shipped with the code
(class names and split files under data/, presets/, prompts/) are found from the installed checkout, SHIPPED.
"""
from pathlib import Path

SHIPPED = Path(__file__).resolve().parents[2]
"""The checkout the code runs from: holds data/ (class names, split files), presets/ and prompts/."""

ARTIFACTS = Path("artifacts")
MANIFEST = ARTIFACTS / "data" / "manifest.csv"
CLASSES = ARTIFACTS / "data" / "classes.json"
SYNTHETIC_IMAGES = ARTIFACTS / "data" / "images"
IMPORTED_CLASS_FEATURES = ARTIFACTS / "data" / "class_features.npy"
IMAGES_H5 = ARTIFACTS / "features" / "images.h5"
SKIPPED = ARTIFACTS / "features" / "skipped.json"
CLASSES_H5 = ARTIFACTS / "features" / "classes.h5"
CONFUSION = ARTIFACTS / "library" / "confusion.json"
LIBRARY = ARTIFACTS / "library" / "library.jsonl"
LIBRARY_H5 = ARTIFACTS / "features" / "library.h5"
MODEL_DIR = ARTIFACTS / "model"
CHECKPOINT = MODEL_DIR / "model.pt"
LIVE_DIR = MODEL_DIR / "live"
METRICS_DIR = ARTIFACTS / "metrics"
METRICS = METRICS_DIR / "metrics.json"
PER_CLASS = METRICS_DIR / "per_class.csv"
PREDICTIONS = METRICS_DIR / "predictions.csv"
ROUTING = METRICS_DIR / "routing.json"
PLOTS = METRICS_DIR / "plots"
SHARED_ANSWERS = Path("llm-answers")
"""The default DVC-tracked folder of shared LLM answers (`mdpr llm-cache`)."""
SCRATCH = Path(".cache")
"""Resumable work in progress (embedding chunks), outside every DVC output."""


def located(path: str | Path) -> Path:
    """`path` made absolute, as error messages show a missing input: the reader sees which folder was searched."""
    return Path(path).absolute()
