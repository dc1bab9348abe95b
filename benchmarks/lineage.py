"""What data lineage costs: `dvc status` on a folder dataset of N image files, first and second call.

    .venv/bin/python benchmarks/lineage.py [--images 20000] [--size-kb 110] [--classes 100] [--smoke]

`${dataset.root}` is a dependency of prepare and embed_images (dvc.yaml), so DVC hashes every file under it. This
builds a copy of the project in a temporary git repo with `dataset.name: folder` and `dataset.root` holding N files
of the given size (random bytes with a .JPEG suffix: ImageNet's mean file is about 110 KB; hashing does not care
what the bytes are), runs `dvc repro prepare` once (what a first run does), then times:
- `dvc status`, first call: DVC's state database (under DVC_SITE_CACHE_DIR) deleted and the files evicted from the
  OS page cache (posix_fadvise DONTNEED), so DVC reads and md5-hashes every file, as after a fresh clone or a copy;
- `dvc status`, second call: the state database knows each file's hash by inode, size and mtime, so DVC only
  stat()s the files and rebuilds the directory hash.
A `dvc status` with an empty root gives DVC's own start-up time, to read the others against. Last line:
`SUMMARY lineage: dvc status <first> s first call, <second> s second call, for N files (DVC start-up <s> s)`.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SMOKE = {"images": 20, "size_kb": 1, "classes": 2}  # --smoke
sys.path.insert(0, str(REPO))
from benchmarks._smoke import parse_args


def run(args: list[str], cwd: Path, env: dict) -> float:
    """Seconds a command took (it must succeed)."""
    start = time.perf_counter()
    subprocess.run(args, cwd=cwd, env=env, check=True, capture_output=True, text=True)
    return time.perf_counter() - start


def project_copy(target: Path) -> None:
    """The project's tracked and untracked-not-ignored files, without outputs and dvc.lock."""
    names = subprocess.run(["git", "-C", str(REPO), "ls-files", "-co", "--exclude-standard", "-z"], check=True,
                           capture_output=True, text=True).stdout.split("\0")
    for name in filter(None, names):
        if name.startswith("artifacts/") or name == "dvc.lock" or not (REPO / name).is_file():
            continue
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, target / name)


def write_images(root: Path, images: int, size_kb: int, classes: int) -> list[Path]:
    files = []
    for k in range(images):
        path = root / f"class_{k % classes:03d}" / f"{k:06d}.JPEG"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(size_kb * 1024))
        files.append(path)
    return files


def evict(files: list[Path]) -> None:
    """Drop these files from the OS page cache, so the next read comes from disk."""
    for path in files:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20000)
    parser.add_argument("--size-kb", type=int, default=110)
    parser.add_argument("--classes", type=int, default=100)
    args = parse_args(parser, SMOKE)
    with tempfile.TemporaryDirectory() as tmp:
        repo, site = Path(tmp) / "project", Path(tmp) / "dvc-site"
        project_copy(repo)
        params = yaml.safe_load((repo / "params.yaml").read_text())
        params["dataset"].update(name="folder", root="data/raw/bench")
        (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": str(repo),
               "DVC_NO_ANALYTICS": "1", "DVC_SITE_CACHE_DIR": str(site)}
        for command in (["git", "init", "-q"], ["git", "add", "-A"],
                        ["git", "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "project"]):
            run(command, repo, env)
        (repo / "data/raw/bench").mkdir(parents=True)
        baseline = run([str(BIN / "dvc"), "status"], repo, env)  # DVC's own start-up and the other deps
        start = time.perf_counter()
        files = write_images(repo / "data/raw/bench", args.images, args.size_kb, args.classes)
        written = time.perf_counter() - start
        first_repro = run([str(BIN / "dvc"), "repro", "prepare"], repo, env)
        shutil.rmtree(site)
        evict(files)
        first = run([str(BIN / "dvc"), "status"], repo, env)
        second = run([str(BIN / "dvc"), "status"], repo, env)
        gigabytes = args.images * args.size_kb / 1024 / 1024
        print(f"{args.images} files x {args.size_kb} KB = {gigabytes:.2f} GB under dataset.root "
              f"(written in {written:.1f} s)")
        print(f"dvc status with an empty root (DVC start-up, code deps): {baseline:.1f} s")
        print(f"dvc repro prepare (hashes the root, lists {args.images} images): {first_repro:.1f} s")
        print(f"dvc status, first call (no state db, files not in page cache): {first:.1f} s "
              f"= {gigabytes * 1024 / first:.0f} MB/s, {args.images / first:.0f} files/s")
        print(f"dvc status, second call (state db): {second:.1f} s = {args.images / second:.0f} files/s")
        print(f"SUMMARY lineage: dvc status {first:.1f} s first call, {second:.1f} s second call, for {args.images} "
              f"files of {args.size_kb} KB (DVC start-up {baseline:.1f} s)")


if __name__ == "__main__":
    main()
