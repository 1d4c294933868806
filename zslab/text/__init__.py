"""Offline text encoders (sentence and word-vector models) with the interface of a CLIP text tower."""
from .encoders import (ENCODER_DIMS, TEXT_ENCODERS, GloVeMeanEncoder, SentenceTransformerEncoder, TextEncoder,
                       WordLlamaEncoder, encode_cached, load_text_encoder, text_encoder_names, texts_digest)

__all__ = ["TEXT_ENCODERS", "ENCODER_DIMS", "TextEncoder", "SentenceTransformerEncoder", "GloVeMeanEncoder",
           "WordLlamaEncoder", "load_text_encoder", "text_encoder_names", "encode_cached", "texts_digest"]
