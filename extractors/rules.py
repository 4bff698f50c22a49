"""Offline deterministic extractor: curated cue patterns and a sentiment lexicon over segmented sentences.

Why this shape: signals must be explainable and cheap. Each document is cut into sentences with offsets
(:mod:`extractors.segmenter`); every sentence is matched against per-type cue patterns
(:mod:`extractors.patterns`) with negation, hedging, question and reported-speech scopes, and scored with a
small sentiment lexicon (intensifiers, negation flipping, "but" contrast). One signal per type per sentence;
its citation is the sentence itself, so ``text[start:end] == quote`` holds by construction.

Confidence starts from the cue's prior precision and is lowered by hedges ("if the price goes up we might
look elsewhere", "... unless the bug is fixed"), reported speech and questions; the reported value is then
the sentiment thresholds are chosen by grouped cross-validation on the training corpus
(``rule_thresholds.json``, refit by ``python -m extractors.rule_thresholds``). Severity grows with cue strength
and intensity.

Speed: a trie-shaped literal scan per document decides which cue regexes can match which sentence
(the literals are derived from the regexes, so the gate never changes results; a test checks this).
Same input, same output: no clock, no randomness, no global state beyond compiled regexes.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_right
from dataclasses import dataclass
from functools import lru_cache

from . import patterns as P
from .base import register_extractor
from .grounding import citation_for_span
from .models import Signal, SourceDocument, taxonomy
from .segmenter import Sentence, sentences

NAME = "rules"


def _version(base: str) -> str:
    """Release number plus a digest of the code and data that decide the output: a changed pattern is a new
    extractor version, so stored documents are re-extracted instead of silently keeping stale signals."""
    import hashlib
    from importlib import resources

    h = hashlib.sha256()
    pkg = resources.files(__package__)
    for name in ("rules.py", "patterns.py", "segmenter.py", "rule_thresholds.json"):
        try:
            h.update(pkg.joinpath(name).read_bytes())
        except OSError:
            pass
    return f"{base}+{h.hexdigest()[:8]}"


VERSION = _version("1.0.0")

MIN_CONFIDENCE = 0.3  # below this a cue is too weak to report at all
MAX_SIGNALS_PER_DOC = 2_000

# Sentiment thresholds on the lexicon score (sum of weights in a sentence), per source kind, and each cue's
# precision: chosen by grouped cross-validation on the training corpus (extractors/rule_thresholds.py writes
# THRESHOLDS_FILE; never read off evaluation data). Chat messages are short, so one clear word is enough there;
# instead a negative one must be about a product or service (RuleExtractor._chat_filter). The defaults apply
# only when the file is missing, and are the starting point the cross-validation is compared with.
THRESHOLDS_FILE = "rule_thresholds.json"
DEFAULT_SENTIMENT_THRESHOLDS: dict[str, dict[str, float]] = {
    "negative": {"email": 1.5, "transcript": 1.5, "notes": 1.5, "chat": 0.8, "ticket": 0.8},
    "positive": {"email": 1.5, "transcript": 1.8, "notes": 1.5, "chat": 1.5, "ticket": 1.5},
}

# Confidences are the cue's prior weight lowered by hedging, reported speech and questions. The file also reports
# each cue's precision on the corpus (out of fold, shrunk to the prior) for the audit, but it is NOT applied: the
# corpus negatives are near misses written to trap cues, so it is a lower bound, and applying it pushed real
# signals under the scorer's confidence floor (customer trial: reasons named 0.703 -> 0.676).
LEXICON_PRIOR = 0.6  # nominal precision of a lexicon-only sentiment hit (the prior of its corpus precision)

HEDGE_FACTOR = 0.6
NARRATIVE_FACTOR = 0.75  # sentiment in a sentence without first/second person (long-form sources only)
FORWARDED_FACTOR = 0.85  # sentiment inside a quoted/forwarded message
# Long-form sources carry many polar words that are not the writer's stance; report clearer ones only.
SENTIMENT_MIN_CONFIDENCE = {"email": 0.55, "notes": 0.55, "transcript": 0.45}
REPORTED_FACTOR = 0.8
QUESTION_FACTOR = 0.75
SUBJECT_FACTOR = 0.85

SEVERITY_BASE = {
    "churn_intent": 0.95,
    "escalation": 0.8,
    "payment_issue": 0.75,
    "competitor_mention": 0.7,
    "pricing_objection": 0.65,
    "procurement_blocker": 0.6,
    "champion_departed": 0.8,
    "sponsor_disengaged": 0.65,
    "unresponsive": 0.55,
    "meeting_cancelled": 0.4,
    "product_gap": 0.6,
    "blocker": 0.7,
    "milestone_missed": 0.6,
    "negative_sentiment": 0.55,
    "stakeholder_change": 0.4,
}


@dataclass(frozen=True, slots=True)
class _Cue:
    pid: str
    weight: float
    selfneg: bool
    ask: bool
    weak: bool
    chat_only: bool = False
    needs_service: bool = False
    talk_only: bool = False


# ----------------------------------------------------------------------------------------- prefilter
# Python's regex engine tries every alternative at every position, so 150 cue regexes over every sentence
# cost ~50 ns per character each. Almost every cue needs some literal word ("cancel", "refund"), so one
# trie-shaped scan per document finds which literals occur where, and only cues whose literal occurs in a
# sentence are run on it. The literals are derived from the regexes themselves (necessary conditions),
# so the prefilter never changes what matches.


_PLAIN = re.compile(r"[a-z0-9' -]+")
# Words so common that gating on them gates nothing.
_COMMON = frozenset(
    "the a an to of in on at by for from with and or but is are was were be been has have had do does did "
    "not no it its this that these those i you we he she they my your our any all so as if ca wo".split()
)


def _literal_quality(lits: frozenset[str]) -> tuple[int, int]:
    """Prefer literal sets whose weakest member is long and uncommon, then smaller sets."""
    worst = min(1 if x.strip() in _COMMON else len(x.strip()) for x in lits)
    return worst, -len(lits)


# The cue regexes are written in a small subset of Python's syntax, parsed here with the project's own
# reader (no private ``re`` internals): literals and escaped punctuation, ``.``, classes ``[...]``, the class
# escapes ``\w \W \d \D \s \S``, the zero-width ``\b \B ^ $`` and lookarounds ``(?= (?! (?<= (?<!``,
# non-capturing groups ``(?:...)``, ``|``, and the quantifiers ``? * + {m} {m,} {m,n}`` (lazy or possessive
# too). Anything else (a capturing group, a backreference, an inline flag) is refused at load time, so a cue
# never silently loses its gate; tests/test_rules.py checks on the corpus that the gate never changes a match.
_CLASS_ESCAPES = frozenset("wWdDsS")
_ZERO_ESCAPES = frozenset("bBAZ")
_CHAR_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "f": "\f", "v": "\v"}

# AST nodes: ("lit", ch) one literal character; ("set",) any one of several characters; ("zero",) a zero-width
# test; ("alt", [seq, ...]) a group of alternatives (each a list of nodes); ("rep", lo, hi, node).
_Node = tuple


class _Reader:
    """Recursive-descent reader of the cue subset; ``parse`` returns the top-level alternatives."""

    def __init__(self, rx: str) -> None:
        self.rx, self.i = rx, 0

    def error(self, what: str) -> ValueError:
        return ValueError(f"{what} at {self.i} (cue regexes use a restricted syntax): {self.rx[:80]}")

    def parse(self) -> _Node:
        node = self.alternatives()
        if self.i != len(self.rx):
            raise self.error("unbalanced ')'")
        return node

    def alternatives(self) -> _Node:
        seqs = [self.sequence()]
        while self.i < len(self.rx) and self.rx[self.i] == "|":
            self.i += 1
            seqs.append(self.sequence())
        return ("alt", seqs)

    def sequence(self) -> list[_Node]:
        out: list[_Node] = []
        while self.i < len(self.rx) and self.rx[self.i] not in "|)":
            atom = self.atom()
            out.append(self.quantified(atom))
        return out

    def atom(self) -> _Node:
        rx, ch = self.rx, self.rx[self.i]
        if ch == "(":
            if not rx.startswith("(?", self.i):
                raise self.error("pattern uses a capturing group; use (?:...)")
            for opener, zero in (("(?:", False), ("(?=", True), ("(?!", True), ("(?<=", True), ("(?<!", True)):
                if rx.startswith(opener, self.i):
                    self.i += len(opener)
                    inner = self.alternatives()
                    if self.i >= len(rx) or rx[self.i] != ")":
                        raise self.error("missing ')'")
                    self.i += 1
                    return ("zero",) if zero else inner
            raise self.error("unsupported group")
        if ch == "[":
            self.klass()
            return ("set",)
        if ch == "\\":
            if self.i + 1 >= len(rx):
                raise self.error("trailing backslash")
            e = rx[self.i + 1]
            self.i += 2
            if e in _CLASS_ESCAPES:
                return ("set",)
            if e in _ZERO_ESCAPES:
                return ("zero",)
            if e in _CHAR_ESCAPES:
                return ("lit", _CHAR_ESCAPES[e])
            if e.isalnum():
                raise self.error(f"unsupported escape \\{e}")
            return ("lit", e)
        if ch in "*+?{":
            raise self.error("nothing to repeat")
        self.i += 1
        if ch == ".":
            return ("set",)
        if ch in "^$":
            return ("zero",)
        return ("lit", ch)

    def klass(self) -> None:
        """Skip a character class ``[...]`` (it never yields a required literal)."""
        rx = self.rx
        j = self.i + 1
        if j < len(rx) and rx[j] == "^":
            j += 1
        if j < len(rx) and rx[j] == "]":
            j += 1
        while j < len(rx) and rx[j] != "]":
            j += 2 if rx[j] == "\\" else 1
        if j >= len(rx):
            raise self.error("unterminated character class")
        self.i = j + 1

    def quantified(self, atom: _Node) -> _Node:
        rx = self.rx
        if self.i >= len(rx):
            return atom
        ch = rx[self.i]
        if ch in "?*+":
            lo, hi = {"?": (0, 1), "*": (0, None), "+": (1, None)}[ch]
            self.i += 1
        elif ch == "{":
            close = rx.find("}", self.i)
            body = rx[self.i + 1 : close] if close > 0 else ""
            parts = body.split(",")
            if close < 0 or len(parts) > 2 or not all(p.isdigit() or p == "" for p in parts) or parts[0] == "" and len(parts) == 1:
                return self.literal_brace(atom)
            lo = int(parts[0] or 0)
            hi = lo if len(parts) == 1 else (int(parts[1]) if parts[1] else None)
            self.i = close + 1
        else:
            return atom
        if self.i < len(rx) and rx[self.i] in "?+":
            self.i += 1  # lazy or possessive: the same strings match
        if atom[0] == "zero":
            return atom
        return ("rep", lo, hi, atom)

    def literal_brace(self, atom: _Node) -> _Node:
        raise self.error("'{' that is not a repeat count (escape it)")


def _required_literals(rx: str) -> frozenset[str] | None:
    """Strings of which every match of ``rx`` contains at least one (None when none can be proven).

    A run of consecutive literal characters is required whenever the sequence around it is; a group of
    alternatives requires the union of what each alternative requires (if every one requires something); a
    repeat of at least once requires what its body requires. Of the candidates in a sequence the one whose
    weakest literal is longest and least common wins."""
    if _PLAIN.fullmatch(rx):
        return frozenset([rx]) if len(rx) >= 2 else None

    def req_alt(node: _Node) -> frozenset[str] | None:
        parts = [req_seq(seq) for seq in node[1]]
        if any(x is None for x in parts):
            return None
        return frozenset().union(*parts)  # type: ignore[arg-type]

    def req_seq(seq: list[_Node]) -> frozenset[str] | None:
        cands: list[frozenset[str]] = []
        run: list[str] = []

        def flush() -> None:
            if run:
                cands.append(frozenset(["".join(run)]))
                run.clear()

        for node in seq:
            kind = node[0]
            if kind == "lit":
                run.append(node[1])
                continue
            if kind == "rep" and node[1] >= 1 and node[3][0] == "lit":  # "grr+" requires "grr"
                run.extend([node[3][1]] * min(node[1], 8))
                flush()
                continue
            flush()
            r: frozenset[str] | None = None
            if kind == "alt":
                r = req_alt(node)
            elif kind == "rep" and node[1] >= 1:
                inner = node[3]
                r = req_alt(inner) if inner[0] == "alt" else req_seq([inner])
            if r:
                cands.append(r)
        flush()
        if not cands:
            return None
        return max(cands, key=_literal_quality)

    found = req_alt(_Reader(rx).parse())
    if not found or min(len(x) for x in found) < 2:
        return None
    return found


def _trie_regex(words: set[str]) -> str:
    """One regex matching any of ``words``, shaped as a trie so each position costs a few char tests."""
    trie: dict = {}
    for w in words:
        node = trie
        for ch in w:
            node = node.setdefault(ch, {})
        node[""] = {}

    def build(node: dict) -> str:
        end = "" in node
        alts = [re.escape(ch) + build(child) for ch, child in sorted(node.items()) if ch]
        if not alts:
            return ""
        body = alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
        return f"(?:{body})?" if end else body

    return build(trie)


def _split_top(rx: str) -> list[str]:
    """Top-level alternatives of ``rx`` (so each lexicon word gets its own literal gate)."""
    parts, depth, cur, i = [], 0, [], 0
    while i < len(rx):
        ch = rx[i]
        if ch == "\\":
            cur.append(rx[i : i + 2])
            i += 2
            continue
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "|" and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    parts.append("".join(cur))
    return [p for p in parts if p]


@dataclass(slots=True)
class _Rule:
    """One cue or lexicon entry: its regex (compiled on first use) and what a match means."""

    type: str  # signal type, or "lex" for a sentiment lexicon entry
    source: str
    cue: _Cue | None = None
    weight: float = 0.0  # lexicon weight (negative = negative sentiment)
    core: str = ""  # the regex without the lexicon's word-boundary wrapper (for literal analysis)
    _rx: re.Pattern[str] | None = None

    @property
    def rx(self) -> re.Pattern[str]:
        # Most documents touch few rules; compiling all 500 up front would dominate a short CLI call.
        if self._rx is None:
            self._rx = re.compile(self.source)
        return self._rx


@dataclass(frozen=True, slots=True)
class _Compiled:
    rules: tuple[_Rule, ...]
    always: frozenset[int]  # rules without a provable literal: run on every sentence
    scanner: re.Pattern[str]  # finds every literal at every position (overlapping)
    closure: dict[str, frozenset[int]]  # literal found -> rules it (or a prefix of it) gates
    type_order: dict[str, int]
    neutraliser: re.Pattern[str]
    negator_tail: re.Pattern[str]
    intensifier_tail: re.Pattern[str]
    hedge: re.Pattern[str]
    polite_hedge: re.Pattern[str]
    reported: re.Pattern[str]
    service: re.Pattern[str]
    contrast: re.Pattern[str]
    resolution: re.Pattern[str]
    voice: re.Pattern[str]
    condition: re.Pattern[str]


def _expand(rx: str) -> str:
    for name, body in P.MACROS.items():
        rx = rx.replace("{" + name + "}", body)
    return rx


@lru_cache(maxsize=1)
def _compiled() -> _Compiled:
    """Compile every cue and lexicon entry, and the literal scanner that gates them."""
    known = taxonomy()
    rules: list[_Rule] = []
    for type_, cues in P.PATTERNS.items():
        if type_ not in known:
            raise ValueError(f"patterns.py names unknown signal type {type_!r}")
        for pid, rx, weight, flags, *_ in cues:
            fl = set(flags.split())
            cue = _Cue(pid, weight, "selfneg" in fl, "ask" in fl, "weak" in fl, "chat" in fl, "svc" in fl, "talk" in fl)
            rules.append(_Rule(type_, _expand(rx), cue))
    for sign, lex in ((-1.0, P.NEGATIVE_LEXICON), (1.0, P.POSITIVE_LEXICON)):
        for group, w in lex.items():
            for alt in _split_top(group):
                rules.append(_Rule("lex", r"(?<![\w#@])(?:" + alt + r")(?!\w)", None, sign * w, alt))
    literals: dict[str, set[int]] = {}
    always: set[int] = set()
    for i, r in enumerate(rules):
        try:
            lits = _required_literals(r.core or r.source)
        except ValueError as e:
            raise ValueError(f"{r.type}/{r.cue.pid if r.cue else 'lexicon'}: {e}") from None
        if lits is None:
            always.add(i)
            continue
        for lit in lits:
            literals.setdefault(lit, set()).add(i)
    closure = {
        lit: frozenset(j for k in range(1, len(lit) + 1) for j in literals.get(lit[:k], ())) for lit in literals
    }
    return _Compiled(
        rules=tuple(rules),
        always=frozenset(always),
        scanner=re.compile("(?=(" + _trie_regex(set(literals)) + "))"),
        closure=closure,
        type_order={t: i for i, t in enumerate(known)},
        neutraliser=re.compile(r"\b(?:" + "|".join(P.NEUTRALISERS) + r")\b"),
        negator_tail=re.compile(r"(?:\b" + P.NEGATORS + r"\b|n't)(?:\W+\w+){0,2}\W*$"),
        intensifier_tail=re.compile(r"\b" + P.INTENSIFIERS + r"(?:\W+\w+)?\W*$"),
        hedge=re.compile(r"\b" + P.HEDGES + r"\b"),
        polite_hedge=re.compile(r"\b(?:if|unless|whether|in case|maybe|perhaps|might|thinking (?:about|of)|considering)\b"),
        reported=re.compile(r"\b" + P.REPORTED),
        service=re.compile(r"\b" + P.SERVICE_CONTEXT + r"\b"),
        contrast=re.compile(r"\b(?:but|however|although|though|yet)\b"),
        resolution=re.compile(r"\b" + P.RESOLUTION + r"\b"),
        voice=re.compile(r"(?<![\w'])" + P.VOICE + r"(?![\w'])"),
        condition=re.compile(r"\b(?:unless|if|provided that|as long as|in case)\b"),
    )


def _candidates(c: _Compiled, sents: list[Sentence]) -> list[set[int]]:
    """For each sentence, the rules whose required literal occurs in it (one scan of the whole document)."""
    out: list[set[int]] = [set(c.always) for _ in sents]
    if not sents:
        return out
    starts: list[int] = []
    pos = 0
    for s in sents:
        starts.append(pos)
        pos += len(s.norm) + 1
    joined = "\n".join(s.norm for s in sents)
    closure = c.closure
    seen: set[tuple[int, str]] = set()
    for m in c.scanner.finditer(joined):
        lit = m.group(1)
        si = bisect_right(starts, m.start()) - 1
        if (si, lit) in seen:
            continue
        seen.add((si, lit))
        idx = closure.get(lit)
        if idx:
            out[si].update(idx)
    return out


_RESOLVABLE = ("product_gap", "blocker", "payment_issue", "unresponsive", "escalation")


@dataclass(slots=True)
class _Hit:
    type: str
    confidence: float
    severity: float
    sentence: Sentence
    cue: str
    hedged: bool = False
    weak: bool = False


def _clause_before(norm: str, pos: int) -> str:
    """Text from the start of the clause that contains ``pos`` up to ``pos`` (negation/hedge scope)."""
    cut = max(norm.rfind(",", 0, pos), norm.rfind(";", 0, pos), norm.rfind(":", 0, pos), norm.rfind(" but ", 0, pos))
    return norm[cut + 1 : pos]


def _sentence_hits(
    c: _Compiled, sent: Sentence, cand: set[int], chat: bool, talk: bool = False
) -> tuple[list[_Hit], list[tuple[int, int, float]]]:
    """Cue hits (best per type) and lexicon matches (start, end, weight) for one sentence."""
    norm = sent.norm
    best: dict[str, _Hit] = {}
    lex: list[tuple[int, int, float]] = []
    for i in sorted(cand):
        rule = c.rules[i]
        cue = rule.cue
        if cue is None:
            lex.extend((m.start(), m.end(), rule.weight) for m in rule.rx.finditer(norm))
            continue
        if cue.chat_only and (not chat or sent.question):
            continue  # cues that only mean something in a short customer message, stated not asked
        if cue.talk_only and not talk:
            continue  # meeting talk: a topic mention is worth a low-confidence signal only there
        if cue.needs_service and not c.service.search(norm):
            continue
        type_ = rule.type
        for m in rule.rx.finditer(norm):
            before = _clause_before(norm, m.start())
            if not cue.selfneg and c.negator_tail.search(before[-40:]):
                continue  # "no concerns about renewal", "never had a problem with billing"
            conf = cue.weight
            hedge_rx = c.polite_hedge if cue.ask else c.hedge
            # "we will not renew unless ...": a condition after the cue hedges it as much as one before
            hedged = bool(hedge_rx.search(before)) or (not cue.ask and bool(c.condition.search(norm, m.end())))
            if hedged:
                conf *= HEDGE_FACTOR
            if not cue.ask and c.reported.search(norm, 0, m.start()):
                conf *= REPORTED_FACTOR
            if sent.question and not cue.ask:
                conf *= QUESTION_FACTOR
            if sent.subject:
                conf *= SUBJECT_FACTOR
            prev = best.get(type_)
            if prev is None or conf > prev.confidence:
                sev = SEVERITY_BASE.get(type_, 0.5) * (0.7 if hedged else 1.0)
                best[type_] = _Hit(type_, conf, sev, sent, cue.pid, hedged, cue.weak)
    if best and (m := c.resolution.search(norm)) and not c.negator_tail.search(norm[max(0, m.start() - 30) : m.start()]):
        for t in _RESOLVABLE:
            best.pop(t, None)  # "thanks for resolving my issue": the problem is over
    hits = sorted(best.values(), key=lambda h: c.type_order.get(h.type, 99))
    return hits, lex


def _sentiment(c: _Compiled, sent: Sentence, lex: list[tuple[int, int, float]]) -> tuple[float, float]:
    """(negative score, positive score) of one sentence from its lexicon matches; both >= 0."""
    if not lex:
        return 0.0, 0.0
    norm = sent.norm
    blocked = [(m.start(), m.end()) for m in c.neutraliser.finditer(norm)]
    contrast = [m.start() for m in c.contrast.finditer(norm)]
    last_contrast = contrast[-1] if contrast else -1
    neg = pos = 0.0
    taken_end = -1
    for start, end, weight in sorted(lex, key=lambda x: (x[0], -x[1])):
        if start < taken_end:
            continue  # overlapping entries ("not happy" and "happy"): the longer, earlier one wins
        taken_end = end
        if any(a <= start < b for a, b in blocked):
            continue
        w = weight
        before = norm[max(0, start - 40) : start]
        cut = max(before.rfind(","), before.rfind(";"), before.rfind(" but "))
        scope = before[cut + 1 :]
        if c.intensifier_tail.search(scope):
            w *= 1.4
        if c.negator_tail.search(scope):
            w = -w * 0.8 if w > 0 else -w * 0.3  # "not happy" is negative; "not bad" is faintly positive
        if last_contrast >= 0 and start < last_contrast:
            w *= 0.5  # "it was fine, but ..." : the part after the contrast carries the stance
        if w < 0:
            neg -= w
        else:
            pos += w
    if (neg or pos) and "!" in norm:
        neg *= 1.15
        pos *= 1.15
    return neg, pos


def _squash(score: float, threshold: float) -> float:
    """Map a lexicon score at/above the threshold to a confidence in [0.4, 0.95]."""
    return min(0.95, 0.4 + 0.55 * (1 - math.exp(-(score - threshold + 0.5) / 1.5)))


@lru_cache(maxsize=1)
def _thresholds_file() -> dict:
    """The shipped cross-validated thresholds (empty when the data file is absent)."""
    import json
    from importlib import resources

    try:
        return json.loads(resources.files("extractors").joinpath(THRESHOLDS_FILE).read_text("utf-8"))
    except (FileNotFoundError, OSError):
        return {}


@lru_cache(maxsize=1)
def sentiment_thresholds() -> dict[str, dict[str, float]]:
    """Lexicon-score thresholds per sign and source kind: the cross-validated ones, else the defaults."""
    shipped = _thresholds_file().get("sentiment_thresholds") or {}
    return {sign: {**kinds, **shipped.get(sign, {})} for sign, kinds in DEFAULT_SENTIMENT_THRESHOLDS.items()}


def cue_set_digest() -> str:
    """Digest of what decides the rules' hits (expanded regexes, weights, flags, lexicon), not of the notes and
    examples beside them: the thresholds file records it, so a test sees when it was fitted to another cue set."""
    import hashlib

    h = hashlib.sha256()
    for type_, cues in P.PATTERNS.items():
        for cue in cues:
            h.update(f"{type_}\0{cue[0]}\0{_expand(cue[1])}\0{cue[2]}\0{cue[3]}\n".encode())
    for lex in (P.NEGATIVE_LEXICON, P.POSITIVE_LEXICON):
        for rx, w in lex.items():
            h.update(f"{rx}\0{w}\n".encode())
    for part in (P.NEUTRALISERS, P.NEGATORS, P.INTENSIFIERS, P.HEDGES, P.REPORTED, P.SERVICE_CONTEXT, P.RESOLUTION,
                 P.VOICE, tuple(P.MACROS.items())):
        h.update(repr(part).encode())
    return h.hexdigest()


def _polar_hit(c: _Compiled, sent: Sentence, kind: str, neg: float, pos: float, role: str | None,
               thresholds: dict[str, dict[str, float]] | None = None) -> _Hit | None:
    """The sentiment signal of one sentence from its lexicon scores, or None.

    One function for the extractor and for :mod:`extractors.rule_thresholds`, which chooses the thresholds by
    cross-validation on the training corpus and so must score a threshold exactly as extraction applies it."""
    thr = thresholds or sentiment_thresholds()
    neg_t, pos_t = thr["negative"].get(kind, 1.5), thr["positive"].get(kind, 1.5)
    if neg >= neg_t and neg > 1.2 * pos:
        type_, conf, sev = "negative_sentiment", _squash(neg, neg_t), min(1.0, 0.35 + 0.12 * neg)
    elif pos >= pos_t and pos > 1.2 * neg:
        type_, conf, sev = "positive_sentiment", _squash(pos, pos_t), min(1.0, 0.3 + 0.1 * pos)
    else:
        return None
    if sent.question:
        conf *= QUESTION_FACTOR
    if kind not in ("chat", "ticket"):
        if not c.voice.search(sent.norm):
            conf *= NARRATIVE_FACTOR
        if c.reported.search(sent.norm):
            conf *= REPORTED_FACTOR
        if role in ("quoted", "forwarded"):
            conf *= FORWARDED_FACTOR
    if conf < SENTIMENT_MIN_CONFIDENCE.get(kind, MIN_CONFIDENCE):
        return None
    return _Hit(type_, conf, sev, sent, "lexicon")


def _label(type_: str) -> str:
    return type_.replace("_", " ").capitalize()


Prepared = tuple[list[Sentence], list[set[int]]]


def prepare(doc: SourceDocument) -> Prepared:
    """A document's sentences and each one's candidate cues: the part of the work the rules and the sentence
    classifier share, so a document both decide on is segmented and scanned once."""
    sents = sentences(doc)
    return sents, _candidates(_compiled(), sents)


class RuleExtractor:
    """Pattern + lexicon extractor. Stateless; safe to share between threads."""

    name = NAME
    version = VERSION

    def extract(self, doc: SourceDocument, prepared: Prepared | None = None) -> list[Signal]:
        """``prepared``: the document's :func:`prepare` result when another decision already computed it."""
        c = _compiled()
        kind = doc.kind
        sents, cands = prepared if prepared is not None else prepare(doc)
        hits: list[_Hit] = []
        for sent, cand in zip(sents, cands):
            sent_hits, lex = _sentence_hits(c, sent, cand, kind in ("chat", "ticket"), kind == "transcript")
            neg, pos = _sentiment(c, sent, lex)
            role = None
            if (neg or pos) and doc.segments and kind not in ("chat", "ticket"):
                seg = doc.segment_at(sent.start)
                role = seg.role if seg is not None else None
            polar = _polar_hit(c, sent, kind, neg, pos, role)
            if polar is not None:
                prev = next((h for h in sent_hits if h.type == polar.type), None)
                if prev is None:
                    sent_hits.append(polar)
                elif polar.confidence > prev.confidence:
                    prev.confidence, prev.cue = polar.confidence, prev.cue + "+lexicon"
            hits.extend(sent_hits)
        if kind in ("chat", "ticket"):
            hits = self._chat_filter(c, doc, hits)
        out: list[Signal] = []
        for h in hits:
            if h.confidence < MIN_CONFIDENCE:
                continue
            cit = citation_for_span(doc, h.sentence.start, h.sentence.end)
            snippet = " ".join(h.sentence.norm.split())
            if len(snippet) > 90:
                snippet = snippet[:87] + "..."
            out.append(
                Signal(
                    account_id=doc.account_id,
                    type=h.type,
                    severity=round(min(1.0, max(0.0, h.severity)), 4),
                    confidence=round(min(1.0, max(0.0, h.confidence)), 4),
                    occurred_at=cit.occurred_at or doc.occurred_at,
                    summary=f"{_label(h.type)} [{h.cue}{', hedged' if h.hedged else ''}]: '{snippet}'",
                    evidence=[cit],
                    extractor=NAME,
                    extractor_version=VERSION,
                    source_id=doc.id,
                    hedged=h.hedged,
                )
            )
            if len(out) >= MAX_SIGNALS_PER_DOC:
                break
        return out

    @staticmethod
    def _chat_filter(c: _Compiled, doc: SourceDocument, hits: list[_Hit]) -> list[_Hit]:
        """Short informal messages: negative cues count only when the message is about a product or service.

        Weak cues need a second, non-weak cue in the same message; negative sentiment needs service context.
        """
        strong_neg = any(
            not h.weak and h.type != "negative_sentiment" and taxonomy()[h.type].polarity == -1 for h in hits
        )
        service = bool(c.service.search(doc.text.lower()))
        kept = []
        for h in hits:
            if h.weak and not strong_neg:
                continue
            if h.type == "negative_sentiment" and not (service or strong_neg):
                continue
            kept.append(h)
        return kept


register_extractor(NAME, lambda **_: RuleExtractor())
