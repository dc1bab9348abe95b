"""Where a pretrained tag's CLIP weights come from: the local Hugging Face cache first, the hub only when it answers.

    source, preprocess = tag_source("ViT-B-16", "openai")   # (cached file, the tag's preprocessing) or ("openai", {})
    open_clip.create_model_and_transforms("ViT-B-16", pretrained=source, **preprocess, ...)

Every pretrained tag of open_clip names a Hugging Face hub repo (`hf_hub`). Left alone, open_clip asks the hub even
for weights it has cached, and on a machine without internet the hub client retries each file for about a minute,
printing a warning per try, before a message cut short. So, before open_clip is called:
- the weights are looked up in the local cache without any network (`try_to_load_from_cache`, the files open_clip
  would fetch, safetensors first); when there, open_clip gets the file itself and the tag's preprocessing (mean, std,
  interpolation, resize mode), which is exactly what loading the tag does, and nothing touches the network;
- otherwise, with HF_HUB_OFFLINE=1, or when one metadata request (no retry, HUB_TIMEOUT_S) cannot reach the hub, it
  is one UserError naming the model, the tag, the cache folder, HF_HUB_OFFLINE=1 and the local-checkpoint option;
- otherwise open_clip downloads them as usual, into the same cache.
"""
from __future__ import annotations

import os

from pipeline.core.errors import UserError
from pipeline.core.findings import plain_reason

HUB_TIMEOUT_S = 5.0
"""Seconds the reachability probe waits for the hub before the weights are declared unreachable."""
TAG_PREPROCESS = {"mean": "image_mean", "std": "image_std", "interpolation": "image_interpolation",
                  "resize_mode": "image_resize_mode"}
"""Preprocessing keys of an open_clip pretrained config -> the create_model_and_transforms arguments that set them
(the only preprocessing keys open_clip 3's tags use)."""


def weight_files(model: str, tag: str) -> tuple[str, list[str]]:
    """The hub repo of a tag and the file names open_clip tries there, in its order (safetensors first)."""
    import open_clip
    from open_clip.constants import HF_WEIGHTS_NAME
    from open_clip.pretrained import _get_safe_alternatives

    repo, filename = os.path.split(open_clip.get_pretrained_cfg(model, tag)["hf_hub"])
    filename = filename or HF_WEIGHTS_NAME
    return repo, [*_get_safe_alternatives(filename), filename]


def cached_weights(model: str, tag: str) -> str | None:
    """Path of the tag's weights in the local Hugging Face cache (HF_HOME / HF_HUB_CACHE), or None; no network."""
    from huggingface_hub import try_to_load_from_cache

    repo, names = weight_files(model, tag)
    for name in names:
        path = try_to_load_from_cache(repo, name)
        if isinstance(path, str):
            return path
    return None


def hub_unreachable(repo: str, filename: str) -> str | None:
    """Why the hub cannot serve `repo/filename` now (HF_HUB_OFFLINE set, no connection), or None when it answers."""
    from huggingface_hub import constants, get_hf_file_metadata, hf_hub_url
    from huggingface_hub.errors import HfHubHTTPError

    if constants.HF_HUB_OFFLINE:
        return "HF_HUB_OFFLINE is set"
    try:
        get_hf_file_metadata(hf_hub_url(repo, filename), timeout=HUB_TIMEOUT_S)
    except HfHubHTTPError:
        return None  # the hub answered (an HTTP error is open_clip's to report)
    except Exception as err:  # noqa: BLE001 - any transport failure means the hub is out of reach
        return f"{type(err).__name__}: {plain_reason(err)[:80]}"
    return None


def tag_source(model: str, tag: str) -> tuple[str, dict]:
    """What open_clip should load for a pretrained tag: (cached file, the tag's preprocessing as
    create_model_and_transforms arguments) when the weights are in the local cache, else (tag, {}) when the hub can be
    reached; a UserError when neither."""
    import open_clip

    local = cached_weights(model, tag)
    if local:
        config = open_clip.get_pretrained_cfg(model, tag)
        return local, {argument: config[key] for key, argument in TAG_PREPROCESS.items() if key in config}
    repo, names = weight_files(model, tag)
    reason = hub_unreachable(repo, names[-1])
    if reason:
        raise UserError(f"clip.pretrained = {tag!r} for {model}: {not_cached(repo, names)} and the hub cannot be "
                        f"reached ({reason}); {fetch_fix(repo, names)}.")
    return tag, {}


def not_cached(repo: str, names: list[str]) -> str:
    """'the weights (REPO, FILE or FILE) are not in the local Hugging Face cache CACHE'."""
    from huggingface_hub import constants

    return (f"the weights ({repo}, {' or '.join(names)}) are not in the local Hugging Face cache "
            f"{constants.HF_HUB_CACHE}")


def fetch_fix(repo: str, names: list[str]) -> str:
    """How to bring a tag's weights to a machine the hub cannot reach."""
    return (f"fetch them once where there is internet (`hf download {repo} {names[0]}`) and copy that cache here (or "
            f"point HF_HOME at it; HF_HUB_OFFLINE=1 then keeps every run off the network), or set clip.pretrained to "
            f"a local checkpoint file (.pt, .bin or .safetensors)")
