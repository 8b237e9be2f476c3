"""Names players give (taught categories, leaderboard names): what counts as the same name, and what
cannot be a name at all.

Two names are the same when their keys are: Unicode NFKC (full-width and mathematical letters
become plain ones), case folded, spaces collapsed, and every letter that looks like an ASCII one
replaced by it (the Unicode confusables data, through ``confusable_homoglyphs``), so "Cat", "ｃａｔ",
"𝐜𝐚𝐭" and "cаt" with a Cyrillic "а" are all "cat". A name that holds invisible characters is
refused outright: it would show as something it is not.
"""

from __future__ import annotations

import json
import unicodedata
from functools import cache
from pathlib import Path

import confusable_homoglyphs
from confusable_homoglyphs import confusables

# Unicode's Default_Ignorable_Code_Point ranges (DerivedCoreProperties.txt): characters that show as
# nothing (zero-width spaces and joiners, bidi marks, the Hangul fillers, variation selectors...).
_INVISIBLE = (
    (0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160), (0x17B4, 0x17B5),
    (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E), (0x2060, 0x206F), (0x3164, 0x3164),
    (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A), (0xE0000, 0xE0FFF),
)  # fmt: skip
# Blank but not ignorable: they would make a name look empty or shorter than it is.
_BLANK = {0x2800, 0x3000, 0x00A0, 0x2007, 0x202F}


def invisible(name: str) -> str | None:
    """The first character of ``name`` that shows as nothing (as U+XXXX), else None."""
    for ch in name:
        code = ord(ch)
        if code in _BLANK or any(lo <= code <= hi for lo, hi in _INVISIBLE):
            return f"U+{code:04X}"
    return None


@cache
def _ascii_look_alikes() -> dict[str, str]:
    """Each character that is confusable with an ASCII letter or digit -> that character."""
    data = json.loads((Path(confusable_homoglyphs.__file__).parent / "confusables.json").read_text("utf-8"))
    table = {}
    for ch, homoglyphs in data.items():
        if ch.isascii():
            continue
        plain = [h["c"] for h in homoglyphs if h["c"].isascii() and h["c"].isalnum()]
        if plain:
            table[ch] = plain[0]
    return table


def key(name: str) -> str:
    """What two names must differ in to be different names (see the module docstring)."""
    look_alikes = _ascii_look_alikes()

    def plain(text: str) -> str:
        return "".join(look_alikes.get(ch, ch) for ch in text)

    # Before and after case folding: a capital may look like an ASCII capital, its small letter not.
    folded = plain(plain(unicodedata.normalize("NFKC", name)).casefold())
    return " ".join(folded.split())


def disguised(name: str) -> bool:
    """Letters of several scripts, some of which pass for ASCII ones ("Аda" with a Cyrillic "А"): a
    name made to look like another. "Ωmega" mixes scripts too, but nothing in it passes for ASCII."""
    plain = unicodedata.normalize("NFKC", name)
    return bool(confusables.is_mixed_script(plain)) and key(plain) != " ".join(plain.casefold().split())
