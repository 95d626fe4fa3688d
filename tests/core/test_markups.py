"""Telegram's markup rules: what parses, to which plain text, and what is refused and why."""

from __future__ import annotations

import pytest

from herald.core.markups import MarkupError, parse, visible_length

VALID = [
    ("html", "plain", "<b>Sale</b> starts now", "Sale starts now"),
    (
        "html",
        "all-tags",
        "<b>b</b><strong>s</strong><i>i</i><em>e</em><u>u</u><ins>n</ins>"
        "<s>s</s><strike>k</strike><del>d</del>",
        "bsieunskd",
    ),
    ("html", "nested", "<b>bold <i>both</i></b>", "bold both"),
    ("html", "entities", "&lt;3 &amp; &quot;q&quot; &#128512; &#x41;", '<3 & "q" 😀 A'),
    ("html", "unknown-entity-literal", "fish &chips;", "fish &chips;"),
    ("html", "link", '<a href="https://shop.example/?a=1&b=2">Open</a>', "Open"),
    ("html", "link-single-quotes", "<a href='tg://user?id=1'>me</a>", "me"),
    ("html", "spoilers", '<span class="tg-spoiler">a</span><tg-spoiler>b</tg-spoiler>', "ab"),
    ("html", "pre-code", '<pre><code class="language-py">x &lt; 2</code></pre>', "x < 2"),
    ("html", "blockquote-expandable", "<blockquote expandable>q</blockquote>", "q"),
    ("html", "custom-emoji", '<tg-emoji emoji-id="5368324170671202286">👍</tg-emoji>', "👍"),
    ("html", "uppercase-tags", "<B>x</B>", "x"),
    ("html", "anonymous-end-tag", "<b>x</>", "x"),
    ("markdownv2", "plain", "Sale starts now", "Sale starts now"),
    ("markdownv2", "entities", "*b* _i_ __u__ ~s~ ||p|| `c`", "b i u s p c"),
    ("markdownv2", "escapes", r"1\. Price: 5\-10 \(ok\)\!", "1. Price: 5-10 (ok)!"),
    ("markdownv2", "link", r"[Open](https://shop.example/a\)b)", "Open"),
    ("markdownv2", "nested", "*bold _italic_*", "bold italic"),
    ("markdownv2", "code-keeps-reserved", "`a*b.c`", "a*b.c"),
    ("markdownv2", "pre-with-language", "```python\nprint(1)\n```", "print(1)\n"),
    ("markdownv2", "blockquote", ">quoted\n>more", "quoted\nmore"),
    ("markdownv2", "custom-emoji", "![👍](tg://emoji?id=5368324170671202286)", "👍"),
    ("markdown", "legacy", "*b* _i_ `c` [l](https://x.example)", "b i c l"),
    (None, "no-parse-mode", "<b>*raw*", "<b>*raw*"),
]

INVALID = [
    ("html", "unclosed", "<b>Sale", 'Can\'t find end tag corresponding to start tag "b"'),
    ("html", "mismatched", "<b>x</i>", 'Unmatched end tag at byte offset 4, expected "</b>"'),
    ("html", "unexpected-end", "x</b>", "Unexpected end tag at byte offset 1"),
    ("html", "unknown-tag", "<div>x</div>", 'Unsupported start tag "div" at byte offset 0'),
    ("html", "bare-less-than", "1 < 2", 'Unsupported start tag "" at byte offset 2'),
    ("html", "span-without-spoiler", "<span>x</span>", 'Tag "span" must have class "tg-spoiler"'),
    ("html", "unclosed-start-tag", "привет <b", "Unclosed start tag at byte offset 13"),
    ("html", "unquoted-url", "<a href=https://x>x</a>", "Unexpected end of name token"),
    ("markdownv2", "unescaped-dot", "Sale now.", "Character '.' is reserved"),
    ("markdownv2", "unescaped-dash", "5-10", "Character '-' is reserved"),
    ("markdownv2", "unescaped-paren", "(ok)", "Character '(' is reserved"),
    ("markdownv2", "unbalanced-bold", "*bold", "Can't find end of Bold entity at byte offset 0"),
    (
        "markdownv2",
        "unbalanced-italic",
        "x _it",
        "Can't find end of Italic entity at byte offset 2",
    ),
    ("markdownv2", "unbalanced-code", "`code", "Can't find end of Code entity"),
    ("markdownv2", "unclosed-url", "[x](https://a.b", "Can't find end of a URL at byte offset 4"),
    ("markdownv2", "mid-line-quote", "a > b", "Character '>' is reserved"),
    ("markdown", "legacy-unbalanced", "snake_case", "Can't find end of the entity starting"),
]


@pytest.mark.parametrize(
    ("mode", "text", "plain"),
    [(mode, text, plain) for mode, _, text, plain in VALID],
    ids=[f"{mode}-{name}" for mode, name, _, _ in VALID],
)
def test_valid_markup(mode: str | None, text: str, plain: str) -> None:
    assert parse(text, mode) == plain


@pytest.mark.parametrize(
    ("mode", "text", "reason"),
    [(mode, text, reason) for mode, _, text, reason in INVALID],
    ids=[f"{mode}-{name}" for mode, name, _, _ in INVALID],
)
def test_invalid_markup(mode: str, text: str, reason: str) -> None:
    with pytest.raises(MarkupError) as raised:
        parse(text, mode)
    assert str(raised.value).startswith(reason)


def test_parse_mode_is_case_insensitive() -> None:
    assert parse("<b>x</b>", "HTML") == "x"
    assert parse("*x*", "MarkdownV2") == "x"


def test_unknown_parse_mode() -> None:
    with pytest.raises(ValueError, match="unsupported parse_mode"):
        parse("x", "BBCode")


@pytest.mark.parametrize(
    ("text", "mode", "length"),
    [
        ("<b>Sale</b> &amp; more", "HTML", 11),
        ("*bold* \\!", "MarkdownV2", 6),
        ("<b>as written", None, 13),
        ("<b>unclosed", "HTML", None),
        ("x", "Markdown2", None),
    ],
)
def test_visible_length(text: str, mode: str | None, length: int | None) -> None:
    assert visible_length(text, mode) == length
