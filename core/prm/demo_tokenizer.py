r"""The demo PRM's tokenizer, built offline with the ``tokenizers`` library.

A word-level vocabulary over a *normalised* view of the text the environment writes (the input text
itself is never changed; only the tokenizer's normaliser rewrites it on the way in):

- **Place-aligned digits.** Every digit becomes a token that also says its place counted from the
  right: the units digit of ``51`` is "1 at place 0", the tens digit "5 at place 1". Numbers of
  different lengths then line up column by column, so the token that decides whether
  ``17 * 3 = 51`` is right (the units digits of the three numbers) has the same identity wherever
  it sits. This is the "aligned digits" idea from the arithmetic-in-transformers literature
  (e.g. McLeish et al., 2024, *Transformers Can Do Arithmetic with the Right Embeddings*) done in the
  vocabulary instead of the position encoding, because the model must stay a stock Llama that
  ``AutoModelForTokenClassification`` loads.
- **Signs.** A ``-`` glued to a digit (a negative number, ``-51``) becomes its own sign token,
  distinct from the subtraction operator ``-`` (which the environment always writes between spaces).
- The words of the prompt, the operators and punctuation, and ``"\n"`` as its own token (the TRL step
  separator the ``token-cls`` family reads scores at).

Digits beyond :data:`ALIGNED_PLACES` places keep plain digit tokens (the environment's values have at
most five digits in practice). Each place-tagged digit is written by the normaliser as one private-use
Unicode character, so ``decode`` shows those characters rather than digits; scoring never decodes.
"""

from __future__ import annotations

from typing import Any

SPECIAL_TOKENS: tuple[str, ...] = ("[PAD]", "[UNK]", "[BOS]")
SEPARATOR = "\n"
NEGATIVE_SIGN = "~"
ALIGNED_PLACES = 6
_PLACE_BASE = 0xE000  # start of Unicode's private-use area: characters no real text uses
_WORDS = ("Start", "with", "then", "apply", "in", "order", "Write", "one", "line", "per", "operation")
_SYMBOLS = ("+", "-", "*", "=", "?", ",", ".", ":", NEGATIVE_SIGN)


def place_digit(digit: int, place: int) -> str:
    """The single character the normaliser writes for ``digit`` at ``place`` (0 = units) of a number."""
    return chr(_PLACE_BASE + 10 * place + digit)


def _normaliser() -> Any:
    """Sign and place-tagging rewrites, in an order where each rule still sees the digits it needs."""
    from tokenizers import Regex, normalizers

    rules = [normalizers.Replace(Regex(r"-(?=\d)"), NEGATIVE_SIGN)]
    # Highest place first: tagging a digit only changes characters to the LEFT of the lower places'
    # look-ahead, so "digit followed by exactly k more digits" keeps matching for every lower k.
    for place in reversed(range(ALIGNED_PLACES)):
        for digit in range(10):
            pattern = Regex(rf"{digit}(?=\d{{{place}}}(?!\d))")
            rules.append(normalizers.Replace(pattern, place_digit(digit, place)))
    return normalizers.Sequence(rules)


def build_demo_tokenizer(model_max_length: int = 512) -> Any:
    """A ``PreTrainedTokenizerFast`` for arithmetic chains; saved with ``save_pretrained`` it loads with AutoTokenizer.

    Args:
        model_max_length: Recorded limit (the model's position limit).

    Returns:
        The tokenizer (``[BOS]`` is prepended when ``add_special_tokens`` is on).
    """
    from tokenizers import AddedToken, Regex, Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    aligned = [place_digit(d, p) for p in range(ALIGNED_PLACES) for d in range(10)]
    plain_digits = [str(d) for d in range(10)]
    vocab_list = [*SPECIAL_TOKENS, SEPARATOR, *plain_digits, *aligned, *_SYMBOLS, *_WORDS]
    vocab = {token: index for index, token in enumerate(vocab_list)}
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tokenizer.normalizer = _normaliser()
    # Words stay whole; every other non-space character (digit, sign, operator) is its own token.
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Split(Regex(r"[A-Za-z]+|[^A-Za-z]"), behavior="isolated")]
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
