"""Deterministic benchmark data: news-like texts, the shipped rules replicated to many distinct rules,
and RSS documents. Everything is drawn from a seeded ``random.Random``, so every run sees the same data.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from random import Random
from typing import Any
from xml.sax.saxutils import escape

from daemon.rules.ruleset import Rule, RuleSet


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# Generic wire-copy vocabulary, free of rule terms: items that mention one term are made on purpose
# (NewsGen's ``partial`` share), so the share of items with a hit is known.
NEWS_WORDS = _words(
    "the a of to and in said on for was with it as at by that from his her an were are which this be has had "
    "not after have been their its new they first more two one who also would people year city officials "
    "week minister police report state country told president region talks court market news today local "
    "forces troops summit weather economy agency capital council budget election voters parliament bill "
    "prices inflation bank rates growth exports factory workers union strike schools students university "
    "hospital doctors health vaccine study scientists climate rain storm flood heat wildfire energy oil gas "
    "power grid train airport flights airline company shares profit quarter sales investors deal merger "
    "chief executive board plans project bridge road housing rent water farmers harvest wheat festival film "
    "music museum team match season coach players league cup final goal win lost record fans stadium "
    "launch satellite space data internet software phone privacy rules law judge trial sentence "
    "prison protest march crowd rally mayor governor senator party leader coalition opposition vote poll "
    "survey percent million billion thousand hundred last next early late morning evening night monday "
    "tuesday wednesday thursday friday saturday sunday january march april june july september october "
    "november december spokesman statement announced expected could may might will should under over "
    "between against during before since while where when how why what about into across near around "
    "injured accident fire crash rescue emergency service security border visit"
)
NEWS_NAMES = _words(
    "Lisbon Nairobi Ottawa Jakarta Lima Oslo Manila Accra Hanoi Quito Dublin Warsaw Santiago Osaka Perth "
    "Geneva Munich Seattle Chennai Cairo Brussels Valencia Porto Denver Kyoto Auckland Senate Congress "
    "Reuters Airbus Siemens Toyota Nestle Unilever Smith Garcia Tanaka Novak Okafor Johansson Rossi Dubois"
)
_SYLLABLES = _words("ka ra ba va ne go sha ri mo tu le di sa ro vi na ze ku lo pe ta mi ar en ol")
_WORD_RUN = re.compile(r"(\\.)|([^\W\d_]{3,})")
_LATIN = "abcdefghijklmnopqrstuvwxyz"
_CYRILLIC = "абвгдежзиклмнопрстуфхцчшщыэюя"


def made_up_name(rng: Random, syllables: int = 3) -> str:
    return "".join(rng.choice(_SYLLABLES) for _ in range(syllables)).capitalize()


# --- rules -----------------------------------------------------------------------------------------


def _swap_letter(word: str, rng: Random) -> str:
    """``word`` with one letter after the first replaced by another of the same script and case."""
    if len(word) < 2:
        return word
    pos = rng.randrange(1, len(word))
    ch = word[pos]
    alphabet = _CYRILLIC if "\u0400" <= ch.lower() <= "\u04ff" else _LATIN
    choices = [c for c in alphabet if c != ch.lower()]
    new = rng.choice(choices)
    return word[:pos] + (new.upper() if ch.isupper() else new) + word[pos + 1 :]


def _perturb_alias(alias: str, rng: Random) -> str:
    """A distinct spelling: every word of three or more letters gets one letter changed; digits too, but
    not the width of a word gap (``~2``)."""
    out = _WORD_RUN.sub(lambda m: m.group(1) or _swap_letter(m.group(2), rng), alias)
    return re.sub(r"(?<!~)\d", lambda m: str((int(m.group(0)) + rng.randint(1, 9)) % 10), out)


def _perturb_term(value: Any, rng: Random, list_suffix: str, *, fuzzy: bool) -> Any:
    if isinstance(value, str):
        if value.startswith("@"):
            return value + list_suffix
        return "|".join(_perturb_alias(a.strip(), rng) for a in value.split("|"))
    table = dict(value)
    if not fuzzy:
        table.pop("fuzzy", None)
    if "term" in table:
        table["term"] = "|".join(_perturb_alias(a.strip(), rng) for a in table["term"].split("|"))
    else:  # a regex: change its literal words, keep its escapes
        table["regex"] = _WORD_RUN.sub(lambda m: m.group(1) or _swap_letter(m.group(2), rng), table["regex"])
    return table


def _own_list(value: Any, suffix: str) -> Any:
    """An ``@list`` reference renamed to the copy's own list; other terms unchanged."""
    return value + suffix if isinstance(value, str) and value.startswith("@") else value


def _strip_fuzzy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if k != "fuzzy"}
    return value


def replicate_rules(rules_dir: Path, n_rules: int, seed: int, *, fuzzy_share: float = 0.0) -> str:
    """TOML text of ``n_rules`` rules made from the shipped ones: copy 0 is the original (renamed), later
    copies have every alias perturbed into a distinct spelling and their own copy of each list.

    ``fuzzy_share`` of the rules (spread evenly) get ``fuzzy = 87`` on every group; the others match
    exactly (the shipped per-term ``fuzzy`` is removed from them).
    """
    rng = Random(seed)
    shipped: dict[str, Any] = {}
    lists: dict[str, Any] = {}
    for path in sorted(rules_dir.glob("*.toml")):
        shipped.update(tomllib.loads(path.read_text(encoding="utf-8")).get("rule", {}))
    for path in sorted((rules_dir / "lists").glob("*.toml")):
        lists.update(tomllib.loads(path.read_text(encoding="utf-8")).get("list", {}))
    ids = sorted(shipped)
    fuzzy_every = round(1 / fuzzy_share) if fuzzy_share else 0
    out_rules: dict[str, Any] = {}
    out_lists: dict[str, Any] = {}
    copies = -(-n_rules // len(ids))
    for copy in range(copies):
        suffix = f"-v{copy:02d}"
        for name, body in lists.items():
            terms = body["terms"]
            new = (
                [_strip_fuzzy(t) for t in terms]
                if copy == 0
                else [_perturb_term(t, rng, "", fuzzy=False) for t in terms]
            )
            out_lists[name + suffix] = {"terms": new}
    for index in range(n_rules):
        copy, base = divmod(index, len(ids))
        body = shipped[ids[base]]
        suffix = f"-v{copy:02d}"
        fuzzy = bool(fuzzy_every) and index % fuzzy_every == 0
        rule: dict[str, Any] = {k: v for k, v in body.items() if k not in ("groups", "exclude", "examples")}
        rule["groups"] = {}
        for gname, group in body["groups"].items():
            g = {k: v for k, v in group.items() if k != "terms"}
            if copy == 0:
                g["terms"] = [_strip_fuzzy(t) if not isinstance(t, str) or not t.startswith("@") else t + suffix
                              for t in group["terms"]]  # fmt: skip
            else:
                g["terms"] = [_perturb_term(t, rng, suffix, fuzzy=False) for t in group["terms"]]
            if fuzzy:
                g["fuzzy"] = 87
            rule["groups"][gname] = g
        if "exclude" in body:
            terms = body["exclude"]["terms"]
            rule["exclude"] = {
                "terms": [_own_list(t, suffix) for t in terms]
                if copy == 0
                else [_perturb_term(t, rng, suffix, fuzzy=False) for t in terms]
            }
        out_rules[ids[base] + suffix] = rule
    return _toml({"list": out_lists, "rule": out_rules})


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(type(value))


def _key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def _toml(doc: dict[str, Any], prefix: str = "") -> str:
    """Tables as [headers] (nested dicts of dicts), everything else inline."""
    scalars = {
        k: v for k, v in doc.items() if not (isinstance(v, dict) and all(isinstance(x, dict) for x in v.values()) and v)
    }
    tables = {k: v for k, v in doc.items() if k not in scalars}
    lines = [f"{_key(k)} = {_toml_value(v)}" for k, v in scalars.items()]
    text = (f"[{prefix}]\n" if prefix and lines else "") + "".join(line + "\n" for line in lines)
    for k, v in tables.items():
        text += "\n" + _toml(v, f"{prefix}.{_key(k)}" if prefix else _key(k))
    return text


# --- texts -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _RuleTerms:
    """Surface forms a generator may write for one rule: per required group, per term, its aliases."""

    groups: tuple[tuple[tuple[tuple[str, bool], ...], ...], ...]  # group -> term -> (alias text, prefix)


def _rule_terms(rule: Rule) -> _RuleTerms:
    wanted = {g for entry in rule.require for g in entry.split("|")} or {g.name for g in rule.groups}
    groups = []
    for g in rule.groups:
        if g.name not in wanted:
            continue
        terms = tuple(tuple((a.text, a.prefix) for a in t.aliases) for t in g.terms if t.regex is None and t.aliases)
        groups.append(terms)
    return _RuleTerms(tuple(groups))


class NewsGen:
    """News-like title and summary pairs; ``relevant`` of them are written to make some rule fire,
    ``partial`` mention one rule term in otherwise unrelated news. Optional misspellings of long words
    (``misspell``) are what fuzzy matching is for.
    """

    def __init__(
        self, seed: int, ruleset: RuleSet, *, relevant: float = 0.03, partial: float = 0.10, misspell: float = 0.2
    ) -> None:
        self.rng = Random(seed)
        self.rules = [_rule_terms(r) for r in ruleset]
        self.relevant = relevant
        self.partial = partial
        self.misspell = misspell

    def _filler(self, n: int) -> list[str]:
        rng = self.rng
        return [rng.choice(NEWS_NAMES) if rng.random() < 0.08 else rng.choice(NEWS_WORDS) for _ in range(n)]

    def _surface(self, term: tuple[tuple[str, bool], ...]) -> str:
        rng = self.rng
        text, prefix = rng.choice(term)
        if prefix:
            text += rng.choice(("", "s", "es", "ed", "ing", "y"))
        if rng.random() < self.misspell and " " not in text and len(text) >= 7 and text.isalpha():
            text = _swap_letter(text, rng)
        return text

    def text(self, *, title_words: int = 9, summary_words: int = 20) -> tuple[str, str, str]:
        """``(title, summary, kind)`` with kind "relevant", "partial" or "noise"."""
        rng = self.rng
        title = self._filler(rng.randint(title_words - 3, title_words + 2))
        summary = self._filler(rng.randint(summary_words - 4, summary_words + 4))
        roll = rng.random()
        kind = "noise"
        if roll < self.relevant:
            kind = "relevant"
            rule = rng.choice(self.rules)
            for group in rule.groups:
                title.insert(rng.randrange(len(title) + 1), self._surface(rng.choice(group)))
            if rng.random() < 0.5:
                group = rng.choice(rule.groups)
                summary.insert(rng.randrange(len(summary) + 1), self._surface(rng.choice(group)))
        elif roll < self.relevant + self.partial:
            kind = "partial"
            rule = rng.choice(self.rules)
            target = title if rng.random() < 0.5 else summary
            target.insert(rng.randrange(len(target) + 1), self._surface(rng.choice(rng.choice(rule.groups))))
        title[0] = title[0][:1].upper() + title[0][1:]
        body = " ".join(summary)
        return " ".join(title), body[:1].upper() + body[1:] + ".", kind


# --- feeds -----------------------------------------------------------------------------------------

FEED_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class FeedItem:
    guid: str
    title: str
    link: str
    summary: str
    published: datetime


def feed_items(gen: NewsGen, feed: int, count: int, *, start: int = 0, base: str) -> list[FeedItem]:
    """``count`` items of feed ``feed``, numbered from ``start`` (so later calls add new items)."""
    items = []
    for n in range(start, start + count):
        title, summary, _ = gen.text(title_words=9, summary_words=22)
        slug = "-".join(re.findall(r"\w+", title.lower())[:6])
        when = FEED_EPOCH + timedelta(minutes=7 * n + feed)
        link = f"{base}/news/{feed:03d}/{when:%Y/%m/%d}/{slug}-{n}"
        items.append(FeedItem(f"urn:bench:feed{feed:03d}:item{n:06d}", title, link, summary, when))
    return items


def rss_document(title: str, site: str, items: list[FeedItem]) -> bytes:
    """RSS 2.0 as a news site writes it: HTML descriptions, permanent GUIDs that are not links."""
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/">\n'
        f"<channel>\n<title>{escape(title)}</title>\n<link>{escape(site)}</link>\n"
        f"<description>{escape(title)}: latest news</description>\n<language>en</language>\n"
    ]
    for it in items:
        words = it.summary.split()
        cut = len(words) // 2
        html = f"<p>{' '.join(words[:cut])}</p><p>{' '.join(words[cut:])}</p>"
        parts.append(
            "<item>\n"
            f"<title>{escape(it.title)}</title>\n"
            f"<link>{escape(it.link)}</link>\n"
            f'<guid isPermaLink="false">{escape(it.guid)}</guid>\n'
            f"<pubDate>{format_datetime(it.published)}</pubDate>\n"
            f"<dc:creator>Staff reporter</dc:creator>\n"
            f"<description>{escape(html)}</description>\n"
            "</item>\n"
        )
    parts.append("</channel>\n</rss>\n")
    return "".join(parts).encode("utf-8")
