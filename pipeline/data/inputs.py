"""What a dataset needs on disk before `prepare` runs, where each piece comes from, and whether it is there.

    findings = dataset_findings(params)             # dataset root (a sample of its expected files), split files, ...
    require_dataset(params)                         # prepare: one UserError line naming every missing input
    image_counts(params)                            # {"train": 115846, "val": 20000, "test": 50000} or None

Checks are cheap: the root is probed with a sample of the paths the split files list (SAMPLE_PER_SPLIT per file,
spread over it), not every image; `prepare` still checks them all. With `probe`, a CIFAR archive that is absent but
set to download is tried for reachability (one HEAD request, PROBE_TIMEOUT_S) so `mdpr check` can say an offline
machine will fail; without it, a pending download is only noted.
"""
from __future__ import annotations

import json
from pathlib import Path

from pipeline.config.data_params import DatasetParams
from pipeline.core.errors import UserError
from pipeline.core.findings import MISSING, NOTE, OK, Finding, one_line, plain_reason
from pipeline.core.paths import SHIPPED
from pipeline.data.datasets import DATA_DIR, IMAGENET_LT_HELP, lt_counts
from pipeline.data.sources import SOURCES, source_path

SAMPLE_PER_SPLIT = 20
"""Paths of each split file looked for under the root (first, last and evenly between)."""
PROBE_TIMEOUT_S = 5.0
"""Seconds the CIFAR download host gets to answer a reachability probe."""
SPLITS = DATA_DIR / "splits"


SHIPPED_LISTS = {"imagenet-lt": {"val": "ImageNet_LT_val.txt", "test": "ImageNet_LT_test.txt"},
                 "places-lt": {"train": "Places_LT_train.txt", "val": "Places_LT_val.txt",
                               "test": "Places_LT_test.txt"}}
"""The split files shipped in data/splits, by dataset and split (ImageNet-LT's train list is the user's)."""


def dataset_findings(params: DatasetParams, probe: bool = False) -> list[Finding]:
    """One finding per input of the dataset params name (dataset root, split files, archive, counts file)."""
    if params.name == "synthetic-lt":
        found = [Finding("dataset", OK, "synthetic-lt: prepare generates the images; nothing to obtain")]
    elif params.name in SHIPPED_LISTS:
        found = _split_dataset(params)
    elif params.name in ("cifar10-lt", "cifar100-lt"):
        found = [_cifar(params, probe)]
    elif params.name == "folder":
        found = [_folder(params)]
    elif params.name == "features":
        found = [_file("features file", params, "features_file", False)]
    else:  # a dataset kind without its own check yet: its root, at least
        root = Path(params.root)
        found = [Finding("dataset root", OK if root.exists() else MISSING,
                         f"{root} {'exists (its contents are checked by prepare)' if root.exists() else 'not found'}",
                         f"put the {params.name} files there, or set dataset.root to the folder that holds them")]
    if params.train_counts_file:
        found.append(_file("train counts file", params, "train_counts_file", True))
    return found


def require_dataset(params: DatasetParams) -> None:
    """UserError naming every missing dataset input at once (what `prepare` checks before reading anything)."""
    found = dataset_findings(params)
    if any(finding.status == MISSING for finding in found):
        raise UserError(f"dataset {params.name}: {one_line(found)}; `mdpr check` lists every input of the params.")


def split_lists(params: DatasetParams) -> dict[str, Path | None]:
    """The split file each split reads (None: the train list is not set)."""
    lists = {split: SPLITS / name for split, name in SHIPPED_LISTS[params.name].items()}
    if params.train_list:
        lists["train"] = Path(params.train_list)
    return {"train": lists.get("train"), **lists}


def _split_dataset(params: DatasetParams) -> list[Finding]:
    lists = split_lists(params)
    found, readable = [], {}
    for split, path in lists.items():
        name = "train list" if split == "train" and params.name == "imagenet-lt" else f"{split} split file"
        finding = _split_file(name, params, path)
        found.append(finding)
        if finding.status == OK:
            readable[split] = path
    return [_root(params, readable), *found]


def _split_file(name: str, params: DatasetParams, path: Path | None) -> Finding:
    help_text = IMAGENET_LT_HELP if name == "train list" else "restore it from Git (`git checkout -- data/splits`)"
    if path is None:
        return Finding(name, MISSING, "dataset.train_list is not set", help_text)
    if params.train_list and path == Path(params.train_list):
        try:
            source_path(params, "train_list", shipped=True)  # where DVC sees it change
        except UserError as err:
            return Finding(name, MISSING, str(err))
    if not path.is_file():
        return Finding(name, MISSING, f"{shown(path)} not found", help_text)
    return Finding(name, OK, f"{shown(path)} ({_count_lines(path):,} images)")


def _root(params: DatasetParams, lists: dict[str, Path]) -> Finding:
    """The root holds a sample of the paths the readable split files list (or, without any, just exists)."""
    root, source = Path(params.root), SOURCES[params.name]
    fix = f"put {source.obtain} under {root} as {source.layout}, or set dataset.root to the folder that holds them"
    if not root.is_dir():
        return Finding("dataset root", MISSING, f"{root} not found", fix)
    sample = [rel for path in lists.values() for rel in _sample(path)]
    absent = [rel for rel in sample if not (root / rel).is_file()]
    if not absent:
        return Finding("dataset root", OK, f"{root}: {len(sample)} sampled images of the split files present")
    if len(absent) == len(sample):
        return Finding("dataset root", MISSING, f"{root} holds none of {len(sample)} images sampled from the split "
                       f"files (e.g. {root / absent[0]})", fix)
    return Finding("dataset root", MISSING, f"{root}: {len(absent)} of {len(sample)} images sampled from the split "
                   f"files are missing (first: {root / absent[0]})", f"complete it: {fix}")


def shown(path: Path) -> str:
    """`path` relative to the project root (or to the checkout, for shipped files) when under it."""
    for base in (Path.cwd(), SHIPPED):
        if base in Path(path).absolute().parents:
            return str(Path(path).absolute().relative_to(base))
    return str(path)


def _sample(path: Path) -> list[str]:
    lines = [line.rsplit(maxsplit=1)[0] for line in path.read_text().splitlines() if line.strip()]
    if len(lines) <= SAMPLE_PER_SPLIT:
        return lines
    return [lines[round(k * (len(lines) - 1) / (SAMPLE_PER_SPLIT - 1))] for k in range(SAMPLE_PER_SPLIT)]


def _count_lines(path: Path) -> int:
    return sum(1 for line in path.read_text().splitlines() if line.strip())


def _cifar(params: DatasetParams, probe: bool) -> Finding:
    """The extracted CIFAR python archive under the root, or a download that can (or cannot) happen."""
    import torchvision

    cls = torchvision.datasets.CIFAR10 if params.name == "cifar10-lt" else torchvision.datasets.CIFAR100
    folder = Path(params.root) / cls.base_folder
    names = [name for name, _md5 in cls.train_list + cls.test_list] + [cls.meta["filename"]]
    absent = [name for name in names if not (folder / name).is_file()]
    source = SOURCES[params.name]
    fix = (f"download {source.obtain} where there is internet and extract it under {params.root} (as "
           f"{source.layout})")
    if not absent:
        return Finding("CIFAR archive", OK, f"{folder} ({', '.join(names)})")
    seen = f"{folder / absent[0]} not found"
    if not params.download:
        return Finding("CIFAR archive", MISSING, seen, f"{fix}, or set dataset.download: true on a machine with "
                       "internet")
    unreachable = download_unreachable(cls.url) if probe else None
    if unreachable:
        return Finding("CIFAR archive", MISSING, f"{seen}, and its download from {cls.url} cannot start "
                       f"({unreachable})", fix)
    return Finding("CIFAR archive", NOTE, f"{seen}; prepare downloads {cls.filename} from {cls.url} into "
                   f"{params.root} (dataset.download: true; needs internet)")


def download_unreachable(url: str) -> str | None:
    """Why `url` cannot be fetched now (one HEAD request, no retry), or None when its host answers."""
    import urllib.error
    import urllib.request

    try:
        urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=PROBE_TIMEOUT_S).close()
    except urllib.error.HTTPError:
        return None  # the host answered
    except OSError as err:
        return plain_reason(err)
    return None


def _folder(params: DatasetParams) -> Finding:
    root, source = Path(params.root), SOURCES["folder"]
    classes = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")] if root.is_dir() else []
    if not classes:
        return Finding("dataset root", MISSING, f"{root} has no class sub-folders",
                       f"put {source.obtain} under {root} as {source.layout}")
    if params.split_file and not (root / params.split_file).is_file():
        return Finding("dataset root", MISSING, f"dataset.split_file {root / params.split_file} not found",
                       "write it (CSV path,split) or set dataset.split_file: null")
    return Finding("dataset root", OK, f"{root}: {len(classes)} class folders")


def _file(name: str, params: DatasetParams, key: str, shipped: bool) -> Finding:
    """A file named by dataset.<key>: set, where DVC sees it, and present."""
    value = getattr(params, key)
    if not value:
        return Finding(name, MISSING, f"dataset.{key} is not set", f"set it to {SOURCES['features'].obtain}")
    try:
        path = source_path(params, key, shipped)
    except UserError as err:
        return Finding(name, MISSING, str(err))
    if not path.is_file():
        return Finding(name, MISSING, f"{path} not found", f"put the file there or point dataset.{key} at it")
    return Finding(name, OK, str(path))


def image_counts(params: DatasetParams) -> dict[str, int] | None:
    """Images per split the params will embed, estimated before prepare (None: folder and features datasets)."""
    classes = {"synthetic-lt": params.num_classes, "cifar10-lt": 10, "cifar100-lt": 100}.get(params.name)
    if classes:
        n_max = params.n_max or {"synthetic-lt": 200, "cifar10-lt": 5000, "cifar100-lt": 500}[params.name]
        test = params.test_per_class * classes if params.name == "synthetic-lt" else 10_000
        return {"train": sum(lt_counts(n_max, classes, params.imbalance_factor)),
                "val": params.val_per_class * classes, "test": test}
    if params.name not in SHIPPED_LISTS:
        return None
    counts = {split: _count_lines(path) for split, path in split_lists(params).items() if path and path.is_file()}
    if "train" not in counts:  # ImageNet-LT before its train list is there: the shipped per-class counts
        counts["train"] = sum(json.loads((SPLITS / "ImageNet_LT_train_cls_freq.json").read_text()))
    return {split: counts[split] for split in ("train", "val", "test")}
