"""Write the dataset manifest and classes.json (params: dataset).

    mdpr prepare            # DVC stage `prepare`

Writes artifacts/data/manifest.csv (split,id,label), artifacts/data/classes.json (names, the train counts in use
and their source, many/medium/few groups under the dataset.many_above / few_below thresholds, class-list hash), for
synthetic-lt the generated PNGs under artifacts/data/images/, and for an imported features file with class text
features, artifacts/data/class_features.npy. Prints the split sizes, where the train counts come from and the group
sizes.
"""
import shutil

import numpy as np

from pipeline.config.data_params import DatasetParams
from pipeline.config.params import load_params
from pipeline.core import paths
from pipeline.core.atomic import atomic_path
from pipeline.data import manifest, synthetic
from pipeline.data.datasets import build_dataset
from pipeline.data.inputs import require_dataset


def run(params_path: str = "params.yaml") -> None:
    params = load_params(params_path, DatasetParams)
    require_dataset(params)  # every missing input named at once, before anything is read
    spec = build_dataset(params)
    images = paths.SYNTHETIC_IMAGES
    if images.exists():
        shutil.rmtree(images)
    images.mkdir(parents=True)
    if params.name == "synthetic-lt":
        synthetic.write_images(images, spec.rows, spec.names, params.image_size, params.seed)
    else:
        (images / "README.txt").write_text(f"Images of {params.name} are read from dataset.root.\n")
    paths.IMPORTED_CLASS_FEATURES.unlink(missing_ok=True)
    if spec.class_features is not None:
        with atomic_path(paths.IMPORTED_CLASS_FEATURES) as tmp:
            with open(tmp, "wb") as handle:
                np.save(handle, spec.class_features.astype(np.float32))
    manifest.write_manifest(paths.MANIFEST, spec.rows)
    counts, source = spec.counts_in_use()
    record = manifest.write_classes(paths.CLASSES, manifest.classes_record(
        spec.names, spec.rows, params.name, counts, source, (params.many_above, params.few_below), spec.provenance))
    groups = {g: record["groups"].count(g) for g in manifest.GROUPS}
    print(f"prepare: {params.name}: {len(spec.names)} classes, splits {record['splits']}, train counts from "
          f"{source}, many/medium/few classes {groups['many']}/{groups['medium']}/{groups['few']}")
