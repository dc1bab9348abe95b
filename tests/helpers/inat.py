"""A miniature iNaturalist 2018 in the official format: train2018.json / val2018.json (COCO-style images,
annotations, categories with kingdom..genus and the species name) and generated JPEGs at the paths they name.

    write_inat(root, train_counts=(12, 7, 3, 1), test_per_class=2)     # -> the categories written, in id order
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

SPECIES = [("Plantae", "Tracheophyta", "Pinopsida", "Pinales", "Pinaceae", "Abies", "Abies concolor"),
           ("Animalia", "Chordata", "Aves", "Passeriformes", "Fringillidae", "Spinus", "Spinus tristis"),
           ("Fungi", "Basidiomycota", "Agaricomycetes", "Agaricales", "Amanitaceae", "Amanita", "Amanita muscaria"),
           ("Animalia", "Arthropoda", "Insecta", "Lepidoptera", "Nymphalidae", "Danaus", "Danaus plexippus")]
FIELDS = ("kingdom", "phylum", "class", "order", "family", "genus", "name")


def write_inat(root: Path, train_counts=(12, 7, 3, 1), test_per_class: int = 2, seed: int = 0,
               category_ids=(7, 3, 11, 5)) -> list[dict]:
    """Write the two annotation files and the images under `root`; categories get the ids `category_ids` (not in
    order, as the real file's are not dense), so labels follow the sorted ids."""
    rng = np.random.default_rng(seed)
    categories = [{"id": cid, "supercategory": taxon[0], **dict(zip(FIELDS, taxon))}
                  for cid, taxon in zip(category_ids, SPECIES)]
    image_id = 0
    for name, per_class in (("train2018.json", train_counts), ("val2018.json", [test_per_class] * len(categories))):
        images, annotations = [], []
        for category, count in zip(categories, per_class):
            for _ in range(count):
                image_id += 1
                path = f"train_val2018/{category['kingdom']}/{category['id']}/{image_id:06d}.jpg"
                (root / path).parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(root / path, quality=90)
                images.append({"id": image_id, "file_name": path, "width": 48, "height": 40})
                annotations.append({"id": image_id, "image_id": image_id, "category_id": category["id"]})
        (root / name).write_text(json.dumps({"images": images, "annotations": annotations,
                                             "categories": categories}))
    return sorted(categories, key=lambda c: c["id"])
