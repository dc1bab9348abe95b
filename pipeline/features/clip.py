"""The frozen CLIP encoder, on open_clip.

    encoder = load_encoder(ClipParams(model="ViT-B-16", pretrained="openai"), device="cuda")
    text_feats = encoder.encode_texts(["a photo of a dog."], batch_size=256)   # (N, d), L2-normalised float32
    # texts run through the text transformer only up to each batch's longest prompt (pipeline/features/text.py)
    identity, dim = encoder_identity(ClipParams(model="ViT-B-16", pretrained="openai"))   # no weights built or read

`clip.precision` on a CPU: fp16 is refused (about 4x slower than fp32 there, with no gain: 2.7 s against 0.67 s for
32 images through mdpr-tiny on 2 cores), except for `mdpr predict`, which only needs the same encoder and encodes in
fp32 instead (fp16_on_cpu="fp32"); bf16 runs on a CPU with a warning (features differ from fp32 by ~2e-3).

`clip.pretrained` is a tag (`openai`, `laion2b_s34b_b79k`: downloaded by open_clip into the Hugging Face cache, read
from there without network when present, one clear error when absent and the hub is unreachable: weights.py), a
local checkpoint file under data/checkpoints/ (weights only; hashed into the cache identity; the folder is a DVC
dependency of every stage loading the encoder, so a checkpoint elsewhere is refused), or `none` (random init from
`clip.seed`). The shipped `mdpr-tiny` architecture (pipeline/features/model_configs/) is ~3.5 M parameters at 32 px:
the demo and tests use it.
"""
from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from pipeline.config.data_params import ClipParams
from pipeline.core import paths
from pipeline.core.device import resolve_device
from pipeline.core.errors import UserError
from pipeline.core.hashing import file_sha256
from pipeline.features.text import encode_texts
from pipeline.features.weights import tag_source

CONFIG_DIR = Path(__file__).resolve().parent / "model_configs"


def class_prompts(name: str, templates: str) -> list[str]:
    """The prompts of one class name: `simple` = 'a photo of a {}.', `ensemble` = the 7 templates CLIP's authors
    found best for ImageNet, as open_clip ships them (SIMPLE_IMAGENET_TEMPLATES)."""
    from open_clip.zero_shot_metadata import SIMPLE_IMAGENET_TEMPLATES

    if templates == "simple":
        return [f"a photo of a {name}."]
    return [template(name) for template in SIMPLE_IMAGENET_TEMPLATES]


def register_configs() -> None:
    """Make the project's architectures (mdpr-tiny) known to open_clip."""
    import open_clip

    for path in sorted(CONFIG_DIR.glob("*.json")):
        if path.stem not in open_clip.list_models():
            open_clip.add_model_config(path)


@dataclass
class Encoder:
    """A loaded CLIP model with its eval transform, tokenizer and cache identity."""

    model: torch.nn.Module
    preprocess: object
    tokenizer: object
    identity: dict
    device: torch.device
    input_dtype: torch.dtype

    @property
    def dim(self) -> int:
        return int(self.model.text_projection.shape[1]) if hasattr(self.model, "text_projection") else \
            int(self.model.visual.output_dim)

    @torch.inference_mode()
    def encode_image_batch(self, images: torch.Tensor) -> np.ndarray:
        """(B, 3, H, W) preprocessed images -> (B, d) L2-normalised float32."""
        feats = self.model.encode_image(images.to(self.device, self.input_dtype, non_blocking=True))
        return torch.nn.functional.normalize(feats.float(), dim=-1).cpu().numpy()

    def encode_texts(self, texts: list[str], batch_size: int, progress: bool = False, with_norms: bool = False):
        """Strings -> (N, d) L2-normalised float32, in batches of similar length, each run only up to its longest
        prompt (pipeline/features/text.py); a progress bar on stderr when `progress` and it takes a few seconds.
        `with_norms`: also the (N,) norms of the features before normalisation."""
        if not texts:
            empty = np.zeros((0, self.dim), np.float32)
            return (empty, np.zeros(0, np.float32)) if with_norms else empty
        return encode_texts(self.model, self.tokenizer, texts, batch_size, self.device, progress,
                            with_norms=with_norms)

    def encode_class_names(self, names: list[str], templates: str, batch_size: int,
                           progress: bool = False) -> np.ndarray:
        """(C, d): mean over the prompt templates of each class name's embedding, re-normalised.

        open_clip's build_zero_shot_classifier computes the same quantity, but batches per class and normalises in
        another order (results differ by ~3e-8): this keeps the prompts in one stream of `batch_size` texts.
        """
        prompts = [class_prompts(name, templates) for name in names]
        feats = self.encode_texts([p for per_class in prompts for p in per_class], batch_size, progress)
        feats = feats.reshape(len(names), len(prompts[0]), -1).mean(axis=1)  # (C, d)
        return feats / np.linalg.norm(feats, axis=-1, keepdims=True)


def encoder_identity(params: ClipParams) -> tuple[dict, int]:
    """How the encoder is named in cache metadata, and its embedding width d, from open_clip's configs alone.

    No weights are built, downloaded or read (a checkpoint file is only hashed): a features import records the
    encoder it must match without loading it. The identity holds the model name, the pretrained tag / checkpoint
    sha256 / `none(seed=N)`, the precision, the image size and the normalisation, as `load_encoder` would build them.
    """
    import open_clip
    from open_clip.transform import PreprocessCfg, merge_preprocess_dict

    register_configs()
    if params.model not in open_clip.list_models():
        raise UserError(f"clip.model = {params.model!r} is not an open_clip architecture; see "
                        "open_clip.list_models() (e.g. ViT-B-16, ViT-B-32) or use mdpr-tiny.")
    pretrained, weights_id = _pretrained_source(params)
    config = open_clip.get_model_config(params.model)
    preprocess = asdict(PreprocessCfg())
    if pretrained is not None and not weights_id.startswith("sha256:"):  # a tag: its own mean/std when it has them
        preprocess = merge_preprocess_dict(preprocess, open_clip.get_pretrained_cfg(params.model, pretrained))
    identity = {"model": params.model, "pretrained": weights_id, "precision": params.precision,
                "image_size": json.dumps(list(_pair(config["vision_cfg"]["image_size"]))),
                "mean": json.dumps([round(float(v), 6) for v in preprocess["mean"]]),
                "std": json.dumps([round(float(v), 6) for v in preprocess["std"]])}
    return identity, int(config["embed_dim"])


def cpu_precision(params: ClipParams, device: torch.device, fp16_on_cpu: str = "refuse") -> ClipParams:
    """The clip params to encode with on `device`: fp16 on a CPU refused (UserError) or, with fp16_on_cpu="fp32",
    replaced by fp32 (said on stderr); bf16 on a CPU kept, with a warning on stderr."""
    if device.type != "cpu" or params.precision == "fp32":
        return params
    if params.precision == "bf16":
        print("warning: clip.precision = bf16 on a CPU: it runs, but features differ from fp32 by ~2e-3 and CPUs "
              "without bf16 units are slower; fp32 is the CPU setting.", file=sys.stderr)
        return params
    if fp16_on_cpu == "fp32":
        print("note: clip.precision = fp16 needs a GPU; encoding in fp32 on this CPU (the same encoder).",
              file=sys.stderr)
        return replace(params, precision="fp32")
    raise UserError("clip.precision = fp16 needs a CUDA GPU, but this run is on the CPU (where fp16 is about 4x "
                    "slower than fp32); set clip.precision: fp32 (or bf16), or run where runtime.device finds a GPU.")


def load_encoder(params: ClipParams, device: str = "auto", fp16_on_cpu: str = "refuse") -> Encoder:
    """Build the open_clip model named by `params` in eval mode on `device` (fp16 on a CPU: see cpu_precision)."""
    import open_clip

    torch_device = resolve_device(device)
    params = cpu_precision(params, torch_device, fp16_on_cpu)
    identity, _dim = encoder_identity(params)
    pretrained, preprocess_args = None, {}
    if params.pretrained.lower() != "none":
        pretrained = params.pretrained
        if not identity["pretrained"].startswith("sha256:"):  # a tag: its cached file when there (weights.py)
            pretrained, preprocess_args = tag_source(params.model, params.pretrained)
    torch.manual_seed(params.seed)
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(
            params.model, pretrained=pretrained, precision=params.precision, device=torch_device,
            force_quick_gelu=_needs_quick_gelu(params), **preprocess_args)
    except RuntimeError as err:
        raise UserError(f"clip.pretrained = {params.pretrained!r} for {params.model}: weights could not be loaded "
                        f"({str(err).splitlines()[0][:160]}); on a machine without internet, download them once "
                        "elsewhere into the Hugging Face cache (HF_HOME) or point clip.pretrained at a local "
                        "checkpoint file.") from None
    model.eval()
    tokenizer = open_clip.get_tokenizer(params.model)
    return Encoder(model, preprocess, tokenizer, identity, torch_device, open_clip.get_input_dtype(params.precision)
                   or torch.float32)


def _needs_quick_gelu(params: ClipParams) -> bool:
    """OpenAI's weights were trained with QuickGELU: build `ViT-B-16` + `openai` that way (open_clip would only
    warn)."""
    import open_clip

    if params.pretrained.lower() == "none" or Path(params.pretrained).exists():
        return False
    return bool(open_clip.get_pretrained_cfg(params.model, params.pretrained).get("quick_gelu"))


def _pretrained_source(params: ClipParams) -> tuple[str | None, str]:
    """The weights checked (a tag of the model, an existing checkpoint file, or none) without loading them: the tag or
    file path, and how they are named in cache metadata. load_encoder resolves a tag to its cached file (weights.py)."""
    if params.pretrained.lower() == "none":
        return None, f"none(seed={params.seed})"
    path = Path(params.pretrained)
    if path.suffix in (".pt", ".pth", ".bin", ".safetensors") or path.exists():
        if not path.is_file():
            raise UserError(f"clip.pretrained = {params.pretrained!r}: checkpoint file not found.")
        _under_checkpoints(path)
        return str(path), "sha256:" + file_sha256(path)
    import open_clip

    tags = open_clip.list_pretrained_tags_by_model(params.model)
    if params.pretrained not in tags:
        raise UserError(f"clip.pretrained = {params.pretrained!r} is not a tag of {params.model} "
                        f"({', '.join(tags) or 'none known'}), nor an existing checkpoint file.")
    return params.pretrained, params.pretrained


def _under_checkpoints(path: Path) -> None:
    """Refuse a checkpoint outside data/checkpoints/, the folder dvc.yaml declares as a dependency of every stage that
    loads the encoder (elsewhere, replacing the file would leave `dvc status` up to date and the run-cache stale)."""
    folder = paths.CHECKPOINTS.resolve()
    if folder not in path.resolve().parents:
        raise UserError(f"clip.pretrained = {str(path)!r} lies outside {paths.CHECKPOINTS}/, so DVC would not see "
                        f"the checkpoint change; move or copy it under {paths.CHECKPOINTS}/ (a DVC dependency of every "
                        f"stage that loads the encoder) and point clip.pretrained there.")


def _pair(size) -> tuple[int, int]:
    return tuple(size) if isinstance(size, (tuple, list)) else (int(size), int(size))
