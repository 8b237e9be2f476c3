"""What players may write: labels, leaderboard names and category names, the rules each obeys, and
what JSON Schema can say of those rules (in Python's regex semantics, as schemathesis reads them).
What counts as the same name, and what shows as nothing, is ``store.names``."""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated

from pydantic import AfterValidator, Field

from store.names import disguised, invisible
from store.tables import MAX_CATEGORY_NAME_LENGTH, MAX_LABEL_LENGTH, MAX_NAME_LENGTH

NAME_PUNCTUATION = " _-.'’"  # the apostrophe also as phones type it (O’Brien)
CATEGORY_NAME = re.compile(r"^[\w][\w '\-.]*$")


def valid_unicode(text: str) -> str:
    """Refuse what cannot be stored as UTF-8 (a lone surrogate such as "\\ud800" from a JSON escape)
    before anything is committed; the message does not echo it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"must be valid Unicode text (a lone surrogate at character {exc.start})") from None
    return text


# Characters a label may not hold: controls, line and paragraph separators, and the bidirectional
# controls that would reorder what other viewers read. Other format characters stay allowed, since
# emoji need them (the zero-width joiner of a family, a variation selector).
_HIDDEN_IN_LABELS = r"\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069"
_LABEL_REFUSED = re.compile(f"[{_HIDDEN_IN_LABELS}]")


def valid_label(label: str) -> str:
    label = valid_unicode(label).strip()
    if not label:
        raise ValueError("label must not be empty")
    if len(label) > MAX_LABEL_LENGTH:
        raise ValueError(f"label is too long: {len(label)} > {MAX_LABEL_LENGTH} characters")
    if _LABEL_REFUSED.search(label):
        raise ValueError("label must not contain control, line-break or text-direction characters")
    return label


# valid_label, as JSON Schema says it: not blank, none of the refused characters.
LABEL_PATTERN = rf"^[^{_HIDDEN_IN_LABELS}]*[^\s{_HIDDEN_IN_LABELS}][^{_HIDDEN_IN_LABELS}]*$"
Label = Annotated[str, AfterValidator(valid_label), Field(json_schema_extra={"pattern": LABEL_PATTERN})]


def visible(text: str, what: str) -> str:
    """Refuse a name holding characters that show as nothing (it would pass for another)."""
    hidden = invisible(text)
    if hidden:
        raise ValueError(f"{what} must not hold invisible characters ({hidden})")
    return text


def valid_name(name: str) -> str:
    # NFKC: full-width and mathematical letters are stored as the plain letters they show.
    name = unicodedata.normalize("NFKC", visible(valid_unicode(name), "name")).strip()
    if not 1 <= len(name) <= MAX_NAME_LENGTH:
        raise ValueError(f"name must be 1-{MAX_NAME_LENGTH} characters (got {len(name)})")
    bad = sorted({c for c in name if not (c.isalnum() or c in NAME_PUNCTUATION)})
    if bad:
        shown = ", ".join(repr(c) for c in bad[:5])
        raise ValueError(f"name may hold letters, digits, space, '_', '-', '.' and apostrophes only (not {shown})")
    if disguised(name):
        raise ValueError("name mixes scripts with letters that look like others (e.g. a Cyrillic 'а' among Latin ones)")
    return name


# What JSON Schema can say of the name rules: the whitespace str.split() and str.strip() remove,
# except the blanks store.names refuses.
_SPACE = r"\t\n\x0b\x0c\r\x1c-\x1f \x85\u1680\u2000-\u2006\u2008-\u200a\u2028\u2029\u205f"
PLAYER_NAME_PATTERN = rf"^[{_SPACE}]*[\w.\-'’]([\w .\-'’]*[\w.\-'’])?[{_SPACE}]*$"
CATEGORY_NAME_PATTERN = rf"^[{_SPACE}]*\w[\w{_SPACE}'\-.]*$"


def valid_category_name(name: str) -> str:
    name = " ".join(visible(valid_unicode(name), "name").split())
    if not name:
        raise ValueError("name must not be empty")
    if len(name) > MAX_CATEGORY_NAME_LENGTH:
        raise ValueError(f"name is too long: {len(name)} > {MAX_CATEGORY_NAME_LENGTH} characters")
    if not CATEGORY_NAME.match(name):
        raise ValueError("name may hold letters, digits, spaces and _ - . ' only")
    return name
