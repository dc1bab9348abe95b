"""A local Hugging Face hub cache holding weights for a test tag, laid out as huggingface_hub writes it.

    put_in_cache(tmp_path / "hub", encoder.model.state_dict())    # then HF_HUB_CACHE=tmp_path/hub finds REPO_ID
"""
import torch

REPO_ID = "mdpr-test/tiny-weights"
"""The hub repo the tests' pretrained tag `fake` names (tests/unit/features/test_weights.py registers it)."""


def put_in_cache(hub, state_dict) -> None:
    """The weights where `hf_hub_download` stores them: models--org--name/snapshots/<commit>/<file>, refs/main."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    folder = hub / f"models--{REPO_ID.replace('/', '--')}"
    (folder / "snapshots" / commit).mkdir(parents=True)
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text(commit)
    torch.save(state_dict, folder / "snapshots" / commit / "open_clip_pytorch_model.bin")
