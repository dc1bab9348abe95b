"""CoOp base branch (`model.base: coop`): learnable context vectors through the frozen CLIP text encoder.

    text = load_text_encoder(ClipParams(...), device="cpu")     # the clip params' text tower, frozen, no image tower
    check_encoder(text.identity, checkpoint["encoder"], "artifacts/model/model.pt")   # same CLIP as the features
    prompts = CoOpPrompts(text, class_names, ModelParams(base="coop"), seed=0)
    class_text = prompts()                                     # (C, d) features of "[ctx] {class name}.", unnormalised

Each class's prompt is "X X X X {class name}." tokenised once; the token embeddings of the start token and of
"{class name}." are constants (buffers, not saved), and the n_ctx "X" slots are replaced by the learnable context
(shared by all classes, or one per class with `class_specific_ctx`). Every call runs the frozen transformer over the
C prompts, sorted by length in chunks of `chunk` classes, each run only up to its longest prompt
(`encode_embeddings`, pipeline/features/text.py): the gradient reaches the
context alone, the encoder's weights are never trainable, never in `parameters()` nor in `state_dict()` (the
checkpoint holds the context and the head; the encoder is rebuilt from the clip params at load). With
`ctx_init: "a photo of a"` the untrained class features are exactly the encoder's "a photo of a {class name}.".
"""
from __future__ import annotations

import torch
from torch import nn

from pipeline.config.data_params import ClipParams
from pipeline.config.model_params import ModelParams
from pipeline.core.errors import UserError
from pipeline.features.clip import load_encoder
from pipeline.features.text import TextTower, encode_embeddings, end_positions, text_tower

CTX_INIT_STD = 0.02  # CoOp's random context init, N(0, 0.02)
CHUNK = 128  # prompts per text-encoder call: similar lengths together, each call trimmed to its longest
ENCODER_KEYS = ("model", "pretrained")  # what names the CLIP weights (precision is a numeric format, not another CLIP)


class FrozenTextEncoder(nn.Module):
    """The parts of an open_clip text tower the trimmed forward needs (no image tower), frozen and in eval mode,
    with the tokenizer and the encoder identity (`Encoder.identity`) they came with."""

    def __init__(self, tower: TextTower, tokenizer, identity: dict):
        super().__init__()
        self.token_embedding, self.transformer, self.ln_final = tower.token_embedding, tower.transformer, tower.ln_final
        self.register_buffer("positional_embedding", tower.positional_embedding.detach())  # (77, w)
        self.register_buffer("causal_mask", tower.causal_mask)  # (77, 77)
        if isinstance(tower.text_projection, nn.Module) or tower.text_projection is None:
            self.projection = tower.text_projection
        else:
            self.register_buffer("projection", tower.text_projection.detach())  # (w, d)
        self.pool_type, self.eos_id = tower.pool_type, tower.eos_id
        self.tokenizer, self.identity = tokenizer, identity
        self.requires_grad_(False).eval()

    def train(self, mode: bool = True) -> FrozenTextEncoder:
        return super().train(False)  # frozen: always in eval mode

    def tower(self) -> TextTower:
        return TextTower(self.token_embedding, self.positional_embedding, self.transformer, self.ln_final,
                         self.projection, self.causal_mask, self.pool_type, self.eos_id)


def load_text_encoder(clip: ClipParams, device="cpu") -> FrozenTextEncoder:
    """The frozen text encoder of the CLIP named by the clip params (the image tower is dropped)."""
    encoder = load_encoder(clip, str(device))
    tower = text_tower(encoder.model)
    if tower is None:
        raise UserError(f"model.base = coop: the text tower of clip.model = {clip.model!r} is not a causal CLIP text "
                        "transformer read at its end-of-text token (e.g. SigLIP's); use model.base: residual.")
    return FrozenTextEncoder(tower, encoder.tokenizer, encoder.identity)


def check_encoder(identity: dict, recorded: dict, source: str) -> None:
    """The loaded text encoder must be the CLIP `source` was made with (its recorded model and pretrained)."""
    for key in ENCODER_KEYS:
        if key in recorded and recorded[key] != identity.get(key):
            raise UserError(f"model.base = coop: {source} was made with clip {key} = {recorded[key]!r}, but the clip "
                            f"params give {identity.get(key)!r}; set the clip section back to that encoder, or rerun "
                            "`dvc repro` to rebuild the features and retrain with the new one.")


class CoOpPrompts(nn.Module):
    """C prompts "[ctx_1 ... ctx_n] {class name}." -> (C, d) text features through the frozen text encoder.

    Parameters: `ctx` only, (n, w) shared or (C, n, w) class-specific. The encoder is held outside the module tree
    (not in parameters() or state_dict()) but follows `.to(device)` with it.
    """

    def __init__(self, text: FrozenTextEncoder, class_names: list[str], params: ModelParams,
                 seed: int | None = None, chunk: int = CHUNK):
        super().__init__()
        self._frozen = (text,)  # a tuple: not registered as a submodule
        tower = text.tower()
        n_ctx = params.n_ctx
        tokens = text.tokenizer([" ".join(["X"] * n_ctx) + f" {name}." for name in class_names])  # (C, 77)
        ends = end_positions(tower, tokens)  # (C,) end-of-text positions
        with torch.no_grad():
            embeds = text.token_embedding(tokens[:, :int(ends.max()) + 1].to(text.causal_mask.device))  # (C, L, w)
            vectors = self._initial_context(text, tower, params, len(class_names), seed)  # (n, w) | (C, n, w)
        self.register_buffer("prefix", embeds[:, :1].clone(), persistent=False)  # (C, 1, w) start token
        self.register_buffer("suffix", embeds[:, 1 + n_ctx:].clone(), persistent=False)  # (C, L - 1 - n, w)
        self.register_buffer("ends", ends.to(embeds.device), persistent=False)  # (C,)
        order = torch.argsort(ends, descending=True, stable=True)  # (C,) longest prompts first
        self.register_buffer("order", order.to(embeds.device), persistent=False)
        self.register_buffer("unorder", torch.argsort(order).to(embeds.device), persistent=False)
        self.chunk = chunk
        self.ctx = nn.Parameter(vectors.float())

    @property
    def text(self) -> FrozenTextEncoder:
        return self._frozen[0]

    @staticmethod
    def _initial_context(text: FrozenTextEncoder, tower: TextTower, params: ModelParams, classes: int,
                         seed: int | None) -> torch.Tensor:
        """ctx_init's token embeddings, or N(0, 0.02); repeated per class when class-specific."""
        n_ctx, width = params.n_ctx, tower.positional_embedding.shape[-1]
        if params.ctx_init.strip():
            tokens = text.tokenizer([params.ctx_init.strip()])  # (1, 77)
            count = int(end_positions(tower, tokens)[0]) - 1
            if count != n_ctx:
                raise UserError(f"params: model.ctx_init = {params.ctx_init!r} is {count} tokens but model.n_ctx = "
                                f"{n_ctx}; set model.n_ctx: {count}, or model.ctx_init: '' for a random context.")
            vectors = text.token_embedding(tokens[0, 1:1 + n_ctx].to(text.causal_mask.device))  # (n, w)
            return vectors.expand(classes, -1, -1).clone() if params.class_specific_ctx else vectors
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        shape = (classes, n_ctx, width) if params.class_specific_ctx else (n_ctx, width)
        return torch.randn(shape, generator=generator) * CTX_INIT_STD

    def _apply(self, fn, recurse=True):
        self.text._apply(fn, recurse)  # .to(device) / .float() move the frozen encoder with the context
        return super()._apply(fn, recurse)

    def forward(self) -> torch.Tensor:
        """Text features (C, d) of the C prompts, not normalised; differentiable in the context only."""
        ctx = self.ctx if self.ctx.dim() == 3 else self.ctx.expand(len(self.prefix), -1, -1)  # (C, n, w)
        embeds = torch.cat([self.prefix, ctx.to(self.prefix.dtype), self.suffix], dim=1)  # (C, L, w)
        tower = self.text.tower()
        feats = [encode_embeddings(tower, embeds[rows], self.ends[rows]) for rows in self.order.split(self.chunk)]
        return torch.cat(feats)[self.unorder]  # (C, d) in class order
