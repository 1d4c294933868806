"""Train only the token-embedding rows a corpus uses: same weights, a fraction of the optimizer work.

An open_clip text tower has a 49,408-row token embedding (81% of ``zsclip-tiny``'s parameters), but a
zsworld corpus uses a few hundred tokens. A row no caption contains gets a zero gradient at every step;
with AdamW and no weight decay on embeddings (``train_contrastive`` excludes them) its moments stay zero
and its update is exactly ``0 / (sqrt(0) + eps) = 0``. Dropping those rows from the optimizer therefore
changes nothing in the result, yet removes most of the per-step work of the optimizer and of the
embedding's dense gradient (measured in benchmarks/README.md; the equality is tested bit for bit).

Token ids are renumbered in increasing order, so the end-of-text token (the largest id) stays the largest
and open_clip's ``argmax`` pooling picks the same position.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch


def supports_compaction(model: torch.nn.Module) -> bool:
    """Whether ``model`` is an open_clip text tower whose token ids can be renumbered: a plain
    ``nn.Embedding`` and ``argmax`` pooling (``eos`` pooling looks for one fixed id)."""
    embedding = getattr(model, "token_embedding", None)
    return type(embedding) is torch.nn.Embedding and getattr(model, "text_pool_type", None) == "argmax"


@contextmanager
def compact_token_embedding(model: torch.nn.Module, tokens: torch.Tensor) -> Iterator[torch.Tensor]:
    """Within the block, ``model.token_embedding`` holds only the rows of the ids in ``tokens``; yields
    ``tokens`` renumbered to those rows. On exit (also on error) the trained rows are written back into
    the full table and the full embedding is restored, under the same parameter name."""
    full = model.token_embedding
    used = torch.unique(tokens)                                   # sorted: the renumbering keeps order
    lookup = torch.full((full.num_embeddings,), -1, dtype=torch.long, device=tokens.device)
    lookup[used] = torch.arange(len(used), device=tokens.device)
    small = torch.nn.Embedding(len(used), full.embedding_dim, device=full.weight.device,
                               dtype=full.weight.dtype)
    with torch.no_grad():
        small.weight.copy_(full.weight[used.to(full.weight.device)])
    small.weight.requires_grad_(full.weight.requires_grad)
    model.token_embedding = small                                 # same key: same order in named_parameters
    try:
        yield lookup[tokens]
    finally:
        with torch.no_grad():
            full.weight[used.to(full.weight.device)] = small.weight.detach().to(full.weight.device)
        model.token_embedding = full
