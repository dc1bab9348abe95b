"""The verdict of the embedding-space check (pipeline/features/space.py) as every later summary reports it.

    warning = failed_warning(classes_h5_attrs.get("space_check"), "train")   # a `warning:` line, or None

embed_classes records its verdict in classes.h5's `space_check` attribute: `passed: ...`, `failed: ...` (a run made
under clip.space_check: warn) or NOT_CHECKED. embed_library copies it into library.h5, evaluate into metrics.json
(for checked imports), and embed_library, train, evaluate, `mdpr report` and the HTML report print failed_warning.
Kept apart from the check itself so that those stages depend only on these few lines.
"""
from __future__ import annotations

NOT_CHECKED = "not needed: the image features were encoded by this encoder"
"""The verdict recorded when the images were not imported."""


def failed_warning(verdict: str | None, where: str) -> str | None:
    """The `warning:` line every summary after a failed space check prints (None when it did not fail)."""
    if not verdict or not verdict.startswith("failed"):
        return None
    return (f"warning: {where}: the space check of the imported features FAILED ({verdict.removeprefix('failed: ')}): "
            f"zero-shot, semantic and MDPR numbers of this run are not meaningful.")
