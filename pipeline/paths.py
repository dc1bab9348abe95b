"""Where every stage reads and writes, relative to the project root (the same paths as in dvc.yaml)."""
from pathlib import Path

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
METRICS_DIR = ARTIFACTS / "metrics"
METRICS = METRICS_DIR / "metrics.json"
PER_CLASS = METRICS_DIR / "per_class.csv"
SCRATCH = Path(".cache")
