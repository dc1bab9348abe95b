"""Find which classes zero-shot CLIP confuses, on the train split (params: confusion).

    mdpr confusion          # DVC stage `confusion`

Reads images.h5 (train) and classes.h5; writes artifacts/library/confusion.json: for each class its zero-shot train
accuracy and its `confusion.top_k` most-confused other classes with counts. The library stage names the first one in
the `differential` prompt.
"""
from pipeline.config.library_params import ConfusionParams
from pipeline.config.params import load_params
from pipeline.core import paths
from pipeline.core.atomic import write_json
from pipeline.data import manifest
from pipeline.features import store
from pipeline.library.confusion import confusion


def run(params_path: str = "params.yaml") -> None:
    params = load_params(params_path, ConfusionParams)
    classes = manifest.read_classes(paths.CLASSES)
    expect = {"class_hash": classes["class_hash"]}
    images, image_attrs = store.read_h5(paths.IMAGES_H5, expect)
    text, _ = store.read_h5(paths.CLASSES_H5, {**expect, "model": image_attrs["model"],
                                                "pretrained": image_attrs["pretrained"]})
    train = images["train"]
    report = confusion(train["features"], train["labels"], text[""]["features"], classes["names"], params.top_k)
    write_json(paths.CONFUSION, report)
    print(f"confusion: zero-shot train accuracy {report['train_accuracy']:.3f} over {len(classes['names'])} classes "
          f"-> {paths.CONFUSION}")
