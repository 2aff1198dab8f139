r"""The demo PRM's tokenizer, built offline with the ``tokenizers`` library.

A word-level vocabulary: the words of the arithmetic prompt, single digits (numbers are split into
digits so any value is representable), the operators and punctuation, and ``"\\n"`` as its own token
because it is the TRL step separator the ``token-cls`` family uses by default.
"""

from __future__ import annotations

from typing import Any

SPECIAL_TOKENS: tuple[str, ...] = ("[PAD]", "[UNK]", "[BOS]")
SEPARATOR = "\n"
_WORDS = ("Start", "with", "then", "apply", "in", "order", "Write", "one", "line", "per", "operation")
_SYMBOLS = ("+", "-", "*", "=", "?", ",", ".", ":")


def build_demo_tokenizer(model_max_length: int = 512) -> Any:
    """A ``PreTrainedTokenizerFast`` for arithmetic chains; saved with ``save_pretrained`` it loads with AutoTokenizer.

    Args:
        model_max_length: Recorded limit (the model's position limit).

    Returns:
        The tokenizer (``[BOS]`` is prepended when ``add_special_tokens`` is on).
    """
    from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab_list = [*SPECIAL_TOKENS, SEPARATOR, *(str(d) for d in range(10)), *_SYMBOLS, *_WORDS]
    vocab = {token: index for index, token in enumerate(vocab_list)}
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Whitespace(), pre_tokenizers.Digits(individual_digits=True)]
    )
    tokenizer.add_special_tokens(list(SPECIAL_TOKENS))
    # The separator is an added (not special) token: matched before the whitespace split drops it,
    # and kept when decoding with skip_special_tokens.
    tokenizer.add_tokens([AddedToken(SEPARATOR, normalized=False)])
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[BOS] $A", special_tokens=[("[BOS]", vocab["[BOS]"])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="[BOS]",
        pad_token="[PAD]",
        unk_token="[UNK]",
        model_max_length=model_max_length,
    )
