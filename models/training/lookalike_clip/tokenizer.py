"""Word-level tokenizer written as a Hugging Face ``tokenizer.json`` (the ``tokenizers`` package is not needed).

Layout of the ids: ``[PAD]=0, [UNK]=1, [SOT]=2, [EOT]=3``, then the words in sorted order. A sequence is
``[SOT] words… [EOT] [PAD]…`` of exactly ``context_length`` ids; words beyond ``context_length - 2`` are dropped so
EOT always fits (open_clip's rule). The text tower pools the first EOT position.

The JSON follows the documented ``tokenizers`` format: ``WordLevel`` model, ``Lowercase`` normaliser, ``Whitespace``
pre-tokenizer (regex ``\\w+|[^\\w\\s]+``: words and runs of punctuation), ``TemplateProcessing`` adding SOT/EOT,
fixed padding and truncation. ``@huggingface/tokenizers`` (npm) loads a ``WordLevel`` model through its generic
vocabulary model, which takes its unknown token from the second constructor argument: pass the
``tokenizer_config.json`` written next to it (``unk_token`` etc.), or unknown words get no id.
"""

from __future__ import annotations

import json
import os
import re
from typing import Iterable, Sequence

PAD, UNK, SOT, EOT = "[PAD]", "[UNK]", "[SOT]", "[EOT]"
SPECIALS = (PAD, UNK, SOT, EOT)
PAD_ID, UNK_ID, SOT_ID, EOT_ID = 0, 1, 2, 3

# Hugging Face's `Whitespace` pre-tokenizer pattern; Python's `\w` matches the same ASCII/Unicode word characters.
_PRETOKENIZE = re.compile(r"\w+|[^\w\s]+")

# Always in the vocabulary, so ordinary punctuation in a query is not an unknown word.
_PUNCTUATION = (".", ",", "-", "'", "/", "(", ")", ":", ";", "!", "?", "&")


def pretokenize(text: str) -> list[str]:
    """Lowercase, then split into words and punctuation runs exactly as the JSON's normaliser + pre-tokenizer do."""
    return _PRETOKENIZE.findall(text.lower())


class WordTokenizer:
    """A fixed word → id table with open_clip-style framing and padding."""

    def __init__(self, words: Iterable[str], context_length: int) -> None:
        if context_length < 3:
            raise ValueError("context_length must leave room for SOT, one word and EOT")
        vocab = sorted({w for w in words if w not in SPECIALS})
        self.context_length = context_length
        self.vocab: dict[str, int] = {tok: i for i, tok in enumerate(SPECIALS)}
        for w in vocab:
            self.vocab[w] = len(self.vocab)

    @staticmethod
    def build(texts: Iterable[str], context_length: int, extra_words: Iterable[str] = ()) -> "WordTokenizer":
        """Vocabulary = every word of ``texts`` and ``extra_words`` (after normalisation) plus common punctuation."""
        words: set[str] = set(_PUNCTUATION)
        for t in texts:
            words.update(pretokenize(t))
        for w in extra_words:
            words.update(pretokenize(w))
        return WordTokenizer(words, context_length)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def encode(self, text: str) -> list[int]:
        """``context_length`` ids: ``[SOT] body [EOT] [PAD]…`` with unknown words as ``[UNK]``."""
        body = [self.vocab.get(w, UNK_ID) for w in pretokenize(text)][: self.context_length - 2]
        ids = [SOT_ID, *body, EOT_ID]
        return ids + [PAD_ID] * (self.context_length - len(ids))

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return [self.encode(t) for t in texts]

    def to_hf_json(self) -> dict:
        """The ``tokenizer.json`` document (Hugging Face ``tokenizers`` serialisation format)."""
        added = [
            {
                "id": i,
                "content": tok,
                "single_word": False,
                "lstrip": False,
                "rstrip": False,
                "normalized": False,
                "special": True,
            }
            for i, tok in enumerate(SPECIALS)
        ]
        special = lambda tok: {"SpecialToken": {"id": tok, "type_id": 0}}  # noqa: E731
        seq = lambda name: {"Sequence": {"id": name, "type_id": 0}}  # noqa: E731
        return {
            "version": "1.0",
            "truncation": {
                "direction": "Right",
                "max_length": self.context_length,
                "strategy": "LongestFirst",
                "stride": 0,
            },
            "padding": {
                "strategy": {"Fixed": self.context_length},
                "direction": "Right",
                "pad_to_multiple_of": None,
                "pad_id": PAD_ID,
                "pad_type_id": 0,
                "pad_token": PAD,
            },
            "added_tokens": added,
            "normalizer": {"type": "Lowercase"},
            "pre_tokenizer": {"type": "Whitespace"},
            "post_processor": {
                "type": "TemplateProcessing",
                "single": [special(SOT), seq("A"), special(EOT)],
                "pair": [special(SOT), seq("A"), special(EOT), seq("B"), special(EOT)],
                "special_tokens": {
                    SOT: {"id": SOT, "ids": [SOT_ID], "tokens": [SOT]},
                    EOT: {"id": EOT, "ids": [EOT_ID], "tokens": [EOT]},
                },
            },
            "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
            "model": {"type": "WordLevel", "vocab": self.vocab, "unk_token": UNK},
        }

    def tokenizer_config(self) -> dict:
        """``tokenizer_config.json``: the special tokens by name, as Hugging Face loaders expect."""
        return {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "model_max_length": self.context_length,
            "bos_token": SOT,
            "eos_token": EOT,
            "pad_token": PAD,
            "unk_token": UNK,
            "clean_up_tokenization_spaces": True,
        }

    def save(self, tokenizer_path: str, config_path: str | None = None) -> None:
        os.makedirs(os.path.dirname(os.path.abspath(tokenizer_path)), exist_ok=True)
        with open(tokenizer_path, "w", encoding="utf-8") as f:
            json.dump(self.to_hf_json(), f, indent=1, ensure_ascii=False)
            f.write("\n")
        if config_path:
            with open(config_path, "w", encoding="utf-8") as f:
                json.dump(self.tokenizer_config(), f, indent=1)
                f.write("\n")

    @staticmethod
    def load(tokenizer_path: str) -> "WordTokenizer":
        with open(tokenizer_path, encoding="utf-8") as f:
            doc = json.load(f)
        vocab: dict[str, int] = doc["model"]["vocab"]
        tok = WordTokenizer([], doc["truncation"]["max_length"])
        tok.vocab = dict(vocab)
        return tok

    def special_ids(self) -> dict[str, int]:
        return {"pad": PAD_ID, "unk": UNK_ID, "sot": SOT_ID, "eot": EOT_ID}
