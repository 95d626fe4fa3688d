"""Telegram's message markup parsers, as strict as Telegram's own (tdlib's ``parse_html``,
``parse_markdown_v2`` and ``parse_markdown``): text Telegram refuses with "can't parse
entities" is refused here with the same reason, byte offsets included, so a sender's content
validation is tested against the real rules rather than a lenient stand-in.

Each parser returns the plain text Telegram would show, whose length is what the 4096/1024
limits apply to (:func:`visible_length`). Here, in the core, because both sides need the same
measure: the senders, to fail one recipient whose placeholders made the message too long
before asking Telegram, and the emulator, to answer as Telegram does.
"""

from __future__ import annotations

import re

__all__ = [
    "PARSE_MODES",
    "MarkupError",
    "parse",
    "parse_html",
    "parse_markdown",
    "parse_markdown_v2",
    "visible_length",
]

PARSE_MODES = frozenset({"html", "markdownv2", "markdown"})


class MarkupError(ValueError):
    """The reason Telegram gives after "can't parse entities: "."""


def parse(text: str, parse_mode: str | None) -> str:
    """The plain text of `text` under `parse_mode` (case-insensitive, None = no markup)."""
    mode = (parse_mode or "").lower()
    if not mode:
        return text
    if mode == "html":
        return parse_html(text)
    if mode == "markdownv2":
        return parse_markdown_v2(text)
    if mode == "markdown":
        return parse_markdown(text)
    raise ValueError(f"unsupported parse_mode {parse_mode!r}")


def visible_length(text: str, parse_mode: str | None) -> int | None:
    """The length Telegram holds against its limits: characters (code points) of the plain
    text after the markup is parsed, so tags, entities and escapes do not count. None when
    the markup does not parse or the mode is unknown: Telegram then refuses the message for
    that, and says why itself."""
    try:
        return len(parse(text, parse_mode))
    except ValueError:  # MarkupError, or an unsupported parse mode
        return None


def _offset(text: str, index: int) -> int:
    # Telegram reports offsets in UTF-8 bytes, not characters.
    return len(text[:index].encode("utf-8", "surrogatepass"))


def _at(text: str, index: int) -> str:
    # tdlib reads a NUL past the end; mirroring it keeps the look-ahead code close to theirs.
    return text[index] if index < len(text) else "\0"


# --- HTML --------------------------------------------------------------------------------

_HTML_TAGS = frozenset(
    {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler"}
    | {"a", "code", "pre", "blockquote", "tg-emoji"}
)
_HTML_ENTITY = re.compile(r"&(?:(lt|gt|amp|quot)|#([0-9]{1,7})|#[xX]([0-9a-fA-F]{1,6}));")
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}


def _entity(text: str, index: int) -> tuple[str, int]:
    """The character an HTML entity at `index` stands for, and where it ends; unknown
    entities stay literal, as in Telegram."""
    match = _HTML_ENTITY.match(text, index)
    if match is None:
        return "&", index + 1
    name, decimal, hexadecimal = match.groups()
    if name:
        return _NAMED[name], match.end()
    code = int(decimal) if decimal else int(hexadecimal, 16)
    if not 0 < code <= 0x10FFFF:
        return "&", index + 1
    return chr(code), match.end()


def parse_html(text: str) -> str:
    out: list[str] = []
    open_tags: list[str] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char == "&":
            decoded, i = _entity(text, i)
            out.append(decoded)
        elif char != "<":
            out.append(char)
            i += 1
        elif _at(text, i + 1) == "/":
            i = _html_end_tag(text, i, open_tags)
        else:
            i = _html_start_tag(text, i, open_tags)
    if open_tags:
        raise MarkupError(f'Can\'t find end tag corresponding to start tag "{open_tags[-1]}"')
    return "".join(out)


def _html_end_tag(text: str, begin: int, open_tags: list[str]) -> int:
    if not open_tags:
        raise MarkupError(f"Unexpected end tag at byte offset {_offset(text, begin)}")
    i = begin + 2
    while i < len(text) and not text[i].isspace() and text[i] != ">":
        i += 1
    name = text[begin + 2 : i].lower()
    while i < len(text) and text[i].isspace():
        i += 1
    if _at(text, i) != ">":
        raise MarkupError(f"Unclosed end tag at byte offset {_offset(text, begin)}")
    expected = open_tags.pop()
    # `</>` closes whatever is open, as Telegram allows.
    if name and name != expected:
        raise MarkupError(
            f"Unmatched end tag at byte offset {_offset(text, begin)}, "
            f'expected "</{expected}>", found "</{name}>"'
        )
    return i + 1


def _html_start_tag(text: str, begin: int, open_tags: list[str]) -> int:
    i = begin + 1
    while i < len(text) and not text[i].isspace() and text[i] != ">":
        i += 1
    if i >= len(text):
        raise _unclosed(text, begin)
    tag = text[begin + 1 : i].lower()
    if tag not in _HTML_TAGS:
        raise MarkupError(f'Unsupported start tag "{tag}" at byte offset {_offset(text, begin)}')
    attributes: dict[str, str] = {}
    while (i := _skip_spaces(text, i)) < len(text) and text[i] != ">":
        name, attributes[name], i = _html_attribute(text, i, tag, begin)
    if i >= len(text):
        raise _unclosed(text, begin)
    if tag == "span" and attributes.get("class") != "tg-spoiler":
        raise MarkupError(
            f'Tag "span" must have class "tg-spoiler" at byte offset {_offset(text, begin)}'
        )
    if tag == "tg-emoji" and not attributes.get("emoji-id", "").isdigit():
        raise MarkupError(f"Custom emoji identifier expected at byte offset {_offset(text, begin)}")
    open_tags.append(tag)
    return i + 1


def _html_attribute(text: str, i: int, tag: str, begin: int) -> tuple[str, str, int]:
    """One ``name="value"`` of the tag starting at `begin`: name, value, where it ends."""
    name_begin = i
    while i < len(text) and not text[i].isspace() and text[i] not in "=>":
        i += 1
    name = text[name_begin:i].lower()
    if not name:
        raise MarkupError(
            f'Empty attribute name in the tag "{tag}" at byte offset {_offset(text, begin)}'
        )
    i = _skip_spaces(text, i)
    if _at(text, i) != "=":
        return name, "", i  # valueless, as in `<blockquote expandable>`
    i = _skip_spaces(text, i + 1)
    if i >= len(text):
        raise _unclosed(text, begin)
    if text[i] in "\"'":
        end = text.find(text[i], i + 1)
        if end < 0:
            raise _unclosed(text, begin)
        return name, text[i + 1 : end], end + 1
    value_begin = i
    while i < len(text) and (text[i].isalnum() or text[i] in ".-"):
        i += 1
    if i < len(text) and not text[i].isspace() and text[i] != ">":
        raise MarkupError(
            f"Unexpected end of name token at byte offset {_offset(text, value_begin)}"
        )
    return name, text[value_begin:i].lower(), i


def _skip_spaces(text: str, i: int) -> int:
    while i < len(text) and text[i].isspace():
        i += 1
    return i


def _unclosed(text: str, begin: int) -> MarkupError:
    return MarkupError(f"Unclosed start tag at byte offset {_offset(text, begin)}")


# --- MarkdownV2 --------------------------------------------------------------------------

_RESERVED = frozenset("_*[]()~`>#+-=|{}.!")
_IN_CODE = frozenset("`")


def _reserved(char: str) -> MarkupError:
    return MarkupError(
        f"Character '{char}' is reserved and must be escaped with the preceding '\\'"
    )


def _closes(entity: str, text: str, i: int) -> bool:
    char, following = text[i], _at(text, i + 1)
    if entity == "Italic":
        return char == "_" and following != "_"
    if entity == "Underline":
        return char == "_" and following == "_"
    if entity == "Spoiler":
        return char == "|" and following == "|"
    if entity == "Pre":
        return text.startswith("```", i)
    closing = {"Bold": "*", "Strikethrough": "~", "Code": "`", "TextUrl": "]", "CustomEmoji": "]"}
    return char == closing[entity]


def parse_markdown_v2(text: str) -> str:
    out: list[str] = []
    open_entities: list[tuple[str, int]] = []  # (tdlib's entity type name, byte offset)
    i, n = 0, len(text)
    while i < n:
        char, following = text[i], _at(text, i + 1)
        if char == "\\" and 0 < ord(following) <= 126:
            out.append(following)
            i += 2
            continue
        inside = open_entities[-1][0] if open_entities else None
        if char not in (_IN_CODE if inside in ("Code", "Pre") else _RESERVED):
            out.append(char)
            i += 1
            continue
        if inside is not None and _closes(inside, text, i):
            open_entities.pop()
            i = _markdown_v2_end(text, i, inside)
            continue
        begin = i
        if char == "_":
            entity = "Underline" if following == "_" else "Italic"
            i += 2 if following == "_" else 1
        elif char == "*":
            entity, i = "Bold", i + 1
        elif char == "~":
            entity, i = "Strikethrough", i + 1
        elif char == "|" and following == "|":
            entity, i = "Spoiler", i + 2
        elif char == "[":
            entity, i = "TextUrl", i + 1
        elif char == "!" and following == "[":
            entity, i = "CustomEmoji", i + 2
        elif char == "`" and text.startswith("```", i):
            entity, i = "Pre", _pre_content(text, i + 3)
        elif char == "`":
            entity, i = "Code", i + 1
        elif char == ">" and (i == 0 or text[i - 1] == "\n"):
            # A block quote runs to the end of the line; nothing to balance.
            i += 1
            continue
        else:
            raise _reserved(char)
        open_entities.append((entity, _offset(text, begin)))
    if open_entities:
        entity, offset = open_entities[-1]
        raise MarkupError(f"Can't find end of {entity} entity at byte offset {offset}")
    return "".join(out)


def _pre_content(text: str, i: int) -> int:
    """Where a pre block's text starts: after its language tag and one line break."""
    end = i
    while end < len(text) and not text[end].isspace() and text[end] != "`":
        end += 1
    if end != i and end < len(text) and text[end] != "`":
        i = end
    if _at(text, i) in "\r\n":
        pair = text[i : i + 2]
        i += 2 if pair in ("\r\n", "\n\r") else 1
    return i


def _markdown_v2_end(text: str, i: int, entity: str) -> int:
    """Past the closing delimiter of `entity` at `i`, including a link's ``(url)``."""
    if entity in ("Underline", "Spoiler"):
        return i + 2
    if entity == "Pre":
        return i + 3
    i += 1
    if entity not in ("TextUrl", "CustomEmoji"):
        return i
    if _at(text, i) != "(":
        if entity == "CustomEmoji":
            raise MarkupError("Custom emoji entity must contain a tg://emoji URL")
        return i  # [text] alone links to its own text
    url_begin = i + 1
    i = url_begin
    while i < len(text) and text[i] != ")":
        i += 2 if text[i] == "\\" and 0 < ord(_at(text, i + 1)) <= 126 else 1
    if i >= len(text):
        raise MarkupError(f"Can't find end of a URL at byte offset {_offset(text, url_begin)}")
    return i + 1


# --- legacy Markdown ---------------------------------------------------------------------


def parse_markdown(text: str) -> str:
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char == "\\" and _at(text, i + 1) in "_*`[":
            out.append(text[i + 1])
            i += 2
            continue
        if char not in "_*`[":
            out.append(char)
            i += 1
            continue
        begin = i
        i += 1
        pre = char == "`" and text.startswith("``", i)
        if pre:
            i = _pre_content(text, i + 2)
        end = "]" if char == "[" else char
        while i < n and not (text.startswith("```", i) if pre else text[i] == end):
            out.append(text[i])
            i += 1
        if i >= n:
            raise MarkupError(
                f"Can't find end of the entity starting at byte offset {_offset(text, begin)}"
            )
        i += 3 if pre else 1
        if char == "[" and _at(text, i) == "(":
            close = text.find(")", i)
            if close >= 0:
                i = close + 1
    return "".join(out)
