"""Tests for daemon.text: folding, offset maps, tokenising, HTML to text, regex folding."""

from __future__ import annotations

import html
import random
import re
import unicodedata

import pytest

from daemon.util.htmlparse import TextExtractor
from daemon.util.text import (
    BLOCK_TAGS,
    MARK_RANGES_UNICODE,
    SKIP_TAGS,
    FoldedText,
    _fold_with_offsets,
    _simple_html_text,
    fold,
    fold_pattern,
    fold_term,
    html_to_text,
    is_word_char,
    mark_ranges,
    stored_mark_ranges,
    tokenize,
)


class TestMarks:
    @pytest.mark.skipif(
        unicodedata.unidata_version != MARK_RANGES_UNICODE,
        reason=f"this Python's Unicode is not {MARK_RANGES_UNICODE}: the module computes its own ranges",
    )
    def test_stored_mark_ranges_are_unicodedatas(self) -> None:
        """The combining-mark ranges written into the module are exactly what unicodedata says."""
        assert stored_mark_ranges() == mark_ranges()


class TestFold:
    @pytest.mark.parametrize(
        ("text", "folded"),
        [
            ("Nagorno-Karabakh", "nagorno karabakh"),
            ("Nagorno\u2011Karabakh", "nagorno karabakh"),  # non-breaking hyphen
            ("Nagorno\u2013Karabakh", "nagorno karabakh"),  # en dash
            ("Nagorno \u2014 Karabakh", "nagorno karabakh"),  # em dash with spaces collapses
            ("Nagor\u00adno-Kara\u00adbakh", "nagorno karabakh"),  # soft hyphens vanish
            ("snake_case_word", "snake case word"),
            ("  lots   of\t\nspace  ", "lots of space"),
            ("Straße", "strasse"),
            ("Łódź Ærø", "lodz aero"),
            ("Café crème brûlée", "cafe creme brulee"),
            ("Cafe\u0301", "cafe"),  # decomposed accent
            ("Ḱ", "k"),
            ("ﬁnance ½", "finance 1⁄2"),  # NFKC compatibility forms
            ("ＦＵＬＬ", "full"),  # fullwidth
            ("İstanbul", "istanbul"),
            ("Азербайджан", "азербайджан"),  # й is a letter, kept
            ("Ёлка", "елка"),  # ё folds to е as Russian search expects
            ("Київ", "київ"),  # ї is a letter of its own, kept
            ("Ἀθῆναι Άρης", "αθηναι αρησ"),  # Greek accents stripped; casefold makes final ς a σ
            ("Zero\u200bwidth\u200d", "zerowidth"),
            ("it’s “quoted”", 'it\'s "quoted"'),
            ("tab\x00ctrl", "tab ctrl"),
            ("", ""),
        ],
    )
    def test_fold_table(self, text: str, folded: str) -> None:
        """Each spelling folds to the documented canonical form."""
        assert fold(text).text == folded

    @pytest.mark.parametrize(
        "variant",
        [
            "Nagorno-Karabakh",
            "nagorno karabakh",
            "NAGORNO–KARABAKH",
            "Nagorno\u2011Karabakh",
            "Nagorno\u00ad-\u00adKarabakh",
            "Nágorno-Karabákh",
            "Nagorno\u2010Karabakh",
            "Nagorno_Karabakh",
            html.unescape("Nagorno&#8209;Karabakh"),
            html.unescape("Nagorno&shy;Karabakh".replace("&shy;", "&shy; ")),
        ],
    )
    def test_spelling_variants_fold_alike(self, variant: str) -> None:
        """Case, diacritic, dash, soft-hyphen and entity variants of a term all fold the same."""
        assert fold(variant).text == "nagorno karabakh"

    def test_keep_case_keeps_case_but_folds_the_rest(self) -> None:
        """keep_case folding skips only the casefold."""
        assert fold("F‑16 Ärger", keep_case=True).text == "F 16 Arger"
        assert fold_term("F-16", keep_case=True) == "F 16"

    def test_fast_path_equals_reference(self) -> None:
        """The translate-table fast path and the cluster-wise reference agree on varied text."""
        rng = random.Random(7)
        alphabet = "aZ -_\u2011\u00ad\t\nßﬁÉéñ’“Ёйж\u0301ΆωİK1!.,\u200b\x01"
        for _ in range(400):
            s = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
            assert fold(s).text == _fold_with_offsets(s, False)[0], repr(s)
            assert fold(s, keep_case=True).text == _fold_with_offsets(s, True)[0], repr(s)


class TestOffsets:
    @pytest.mark.parametrize(
        ("original", "folded_word", "original_word"),
        [
            ("The Straße is long", "strasse", "Straße"),
            ("  Nagorno\u2011Karabakh!", "nagorno karabakh", "Nagorno\u2011Karabakh"),
            ("x Cafe\u0301 y", "cafe", "Cafe\u0301"),
            ("Kara\u00adbakh news", "karabakh", "Kara\u00adbakh"),
            ("ﬁnal call", "final", "ﬁnal"),
            ("в Карабахе вчера", "карабахе", "Карабахе"),
            ("a   \t b", "a b", "a   \t b"),
        ],
    )
    def test_span_maps_back_to_original(self, original: str, folded_word: str, original_word: str) -> None:
        """A folded substring's span selects exactly the original characters it came from."""
        ft = fold(original)
        start = ft.text.index(folded_word)
        assert ft.original_text(start, start + len(folded_word)) == original_word

    def test_every_token_round_trips(self) -> None:
        """For random text, each folded token's original span folds back to the token."""
        rng = random.Random(11)
        alphabet = "abcXYZ  -\u2011\u00adßﬁÉéñ’Ёйж\u0301Ά1.\u200b"
        for _ in range(300):
            s = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40)))
            ft = fold(s)
            for tok in tokenize(ft.text):
                a, b = ft.span(tok.start, tok.end)
                assert 0 <= a < b <= len(s)
                assert fold(s[a:b]).text == tok.text, (s, tok)

    def test_ascii_map_is_lazy(self) -> None:
        """Pure-ASCII text builds its offset map only when a span is asked for."""
        ft = FoldedText("Hello  World")
        assert ft._starts is None
        assert ft.original_text(6, 11) == "World"
        assert ft._starts is not None


class TestTokenize:
    @pytest.mark.parametrize(
        ("text", "tokens"),
        [
            ("shelling near martuni", ["shelling", "near", "martuni"]),
            ("karabakh's f 16, ok.", ["karabakh", "s", "f", "16", "ok"]),
            ("в карабахе", ["в", "карабахе"]),
            ("हिन्दी भाषा", ["हिन्दी", "भाषा"]),  # vowel signs stay inside the word
            ("", []),
        ],
    )
    def test_tokens(self, text: str, tokens: list[str]) -> None:
        """Tokens are runs of letters, digits and marks; spans index the folded text."""
        found = tokenize(text)
        assert [t.text for t in found] == tokens
        assert all(text[t.start : t.end] == t.text for t in found)

    @pytest.mark.parametrize(
        ("ch", "word"), [("a", True), ("7", True), ("й", True), ("\u0301", True), (" ", False), ("'", False)]
    )
    def test_word_chars(self, ch: str, word: bool) -> None:
        """Letters, digits and combining marks are word characters; spaces and quotes are not."""
        assert is_word_char(ch) is word


class TestHtmlToText:
    @pytest.mark.parametrize(
        ("source", "text"),
        [
            ("<p>Shelling</p><p>in Martuni</p>", "Shelling in Martuni"),
            ("a<br>b<br/>c", "a b c"),
            ("<b>Kara</b>bakh", "Karabakh"),  # inline tags do not split words
            ("<script>alert('x')</script>Visible<style>p{color:red}</style>", "Visible"),
            ("AT&amp;T &eacute;t&eacute; &#8209; &nbsp;x", "AT&T été ‑ x"),
            ("<ul><li>one</li><li>two</li></ul>", "one two"),
            ("plain text, no markup", "plain text, no markup"),
            ("3 < 4 and 5 > 2", "3 < 4 and 5 > 2"),
            ("<div>unclosed <script>secret", "unclosed"),
            ("<noscript>x</noscript><template>y</template>z", "z"),
        ],
    )
    def test_html_to_text(self, source: str, text: str) -> None:
        """Visible text only: entities decoded, blocks separated, scripts and styles dropped."""
        assert html_to_text(source) == text

    def test_same_text_as_the_full_parser(self) -> None:
        """Random fragments of simple and tricky markup give exactly the text html.parser collects."""
        pieces = [
            "<p>", "</p>", "<P class='x'>", "<br/>", "<br />", "<img src=\"a.jpg\" alt=x/>", "<b>", "</b >",
            "<a href=http://e.example/?a=1&amp;b=2>", "</a>", "<div\tid=\"d\"\n>", "<h1>", "</h1>", "<li>",
            "<span data-x='1' hidden>", "<script>", "</script>", "<style>", "<svg>", "</svg>", "<!-- c -->",
            "<!DOCTYPE html>", "<?pi?>", "<", ">", "</>", "<a b=c=d>", "<a\xa0b>", "<p\x0b>", "</p x>",
            "<a title='>'>", "<3", "a < b", "&amp;", "&lt;", "&eacute;", "&#8209;", "&#x41;", "&nbsp;", "&amp",
            "&unknown;", "AT&T", "&", "Karabakh", "Stepanakert ", "\u00e9t\u00e9", " ", "\n", "x", "...",
        ]  # fmt: skip
        rng = random.Random(14)
        for _ in range(4000):
            source = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 12)))
            parser = TextExtractor(skip=SKIP_TAGS, block=BLOCK_TAGS)
            parser.feed(source)
            parser.close()
            assert html_to_text(source) == " ".join("".join(parser.parts).split()), source

    def test_simple_markup_skips_the_full_parser(self) -> None:
        """A fragment of plain tags and entities is read without html.parser; a comment is not."""
        assert _simple_html_text("<p>AT&amp;T</p><br/>x") == " AT&T  x"
        assert _simple_html_text("<p>a</p><!-- b -->") is None
        assert _simple_html_text("<p>a</p><script>b</script>") is None


class TestFoldPattern:
    @pytest.mark.parametrize(
        ("pattern", "folded"),
        [
            (r"cease-?fire", r"cease ?fire"),
            (r"[\w-]+", r"[\w ]+"),
            (r"[a-z]", r"[a-z]"),
            (r"Łódź", r"lodz"),
            (r"Straße?", r"Stra(?:ss)e?"),
            (r"(?P<my_name>x)\-", r"(?P<my_name>x) "),
            (r"[^-]", r"[^ ]"),
            (r"\d{2,4}", r"\d{2,4}"),
        ],
    )
    def test_fold_pattern(self, pattern: str, folded: str) -> None:
        """Literal dashes become spaces and literal letters fold; regex syntax is untouched."""
        assert fold_pattern(pattern) == folded

    @pytest.mark.parametrize("text", ["cease-fire", "cease\u2011fire", "ceasefire", "Cease fire"])
    def test_folded_pattern_matches_folded_text(self, text: str) -> None:
        """A regex written with a hyphen matches every dash spelling once both are folded."""
        rx = re.compile(fold_pattern("cease-?fire"), re.IGNORECASE)
        assert rx.search(fold(text).text)
