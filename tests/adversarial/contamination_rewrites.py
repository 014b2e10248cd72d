"""Leaked-style rewrites of benchmark questions: what a scraped copy of a benchmark item looks
like when it is not verbatim. Deterministic (one seeded `random.Random` per call), pure Python.

    rewrite("numbers", text, rng) -> text      # one kind
    KINDS                                      # name -> function(text, rng) -> text

Used by tests/adversarial/test_contamination_rewrites.py and bench/contamination_rewrites.py
to measure the decontamination index's recall per kind. A kind that finds nothing to change in
a text returns it unchanged; callers count recall on the changed texts only.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

# --- numbers: new values in the same places ---------------------------------------------------

# a standalone number (1,000 and 2.5 count as one); not part of a word or a LaTeX command (x_1 stays)
_NUM = re.compile(r"(?<![\w.,\\^_])(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(?![\w]|[.,]\d)")
_NUMBER_WORDS = ["two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "twelve", "twenty"]
_NUMBER_WORD = re.compile(r"\b(" + "|".join(_NUMBER_WORDS) + r")\b", re.IGNORECASE)


def _other_number(whole: str, frac: str | None, rng: random.Random) -> str:
    value = int(whole.replace(",", ""))
    if value < 2:
        new = value + rng.randint(2, 5)
    else:
        new = value
        while new == value:
            new = rng.randint(max(2, value // 2), value * 2 + 1)
    text = f"{new:,}" if "," in whole else str(new)
    return text + (frac or "")


def is_formula(text: str) -> bool:
    """A competition question with LaTeX math (MATH, AIME), not a prose word problem (GSM8K,
    whose "$" is currency)."""
    return bool(re.search(r"\\[a-zA-Z]|[\^_{}]|\$[^$\d\s][^$]*\$", text))


def numbers(text: str, rng: random.Random) -> str:
    """Every number of a word problem gets another value (a template copy: same story, new
    numbers); number words too (three -> five). Formulas are left alone: there a changed
    number is another problem (MATH train holds many such siblings of MATH-500 items)."""
    if is_formula(text):
        return text
    text = _NUM.sub(lambda m: _other_number(m.group(1), m.group(2), rng), text)

    def word(m: re.Match) -> str:
        new = rng.choice([w for w in _NUMBER_WORDS if w != m.group(0).lower()])
        return new.capitalize() if m.group(0)[0].isupper() else new

    return _NUMBER_WORD.sub(word, text)


# --- names and entities -------------------------------------------------------------------------

_NAMES = ["Priya", "Tomasz", "Aisha", "Mateo", "Yuki", "Olumide", "Greta", "Rafael", "Ingrid", "Kwame",
          "Leilani", "Dmitri", "Soraya", "Bjorn", "Camila", "Hamid"]
# capitalized words that are not names (sentence starts are skipped anyway)
_NOT_NAMES = {"I", "If", "The", "A", "An", "In", "On", "At", "For", "Each", "Every", "How", "What", "Find", "Let",
              "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday", "January", "February",
              "March", "April", "May", "June", "July", "August", "September", "October", "November", "December",
              "Mr", "Mrs", "Ms", "Dr", "Express", "Compute", "Enter", "Give", "Suppose", "Then", "She", "He", "They"}
_CAPITALIZED = re.compile(r"(?<![\\\w])([A-Z][a-z]{2,})(?=\W|$)")
_ENTITIES = {"apples": "pears", "apple": "pear", "cookies": "muffins", "cookie": "muffin", "eggs": "lemons",
             "egg": "lemon", "ducks": "geese", "dogs": "rabbits", "dog": "rabbit", "cats": "hamsters", "cat": "hamster",
             "cars": "bikes", "car": "bike", "books": "comics", "book": "comic", "candy": "gum", "pizza": "pie",
             "cupcakes": "brownies", "marbles": "stickers", "pencils": "crayons", "shirts": "hats", "shirt": "hat",
             "chickens": "turkeys", "cows": "goats", "students": "pupils", "store": "shop", "farm": "ranch",
             "garden": "yard", "school": "academy", "boxes": "crates", "box": "crate", "bags": "sacks", "bag": "sack"}
_ENTITY = re.compile(r"\b(" + "|".join(sorted(_ENTITIES, key=len, reverse=True)) + r")\b")


def _sentence_starts(text: str) -> set[int]:
    return {0} | {m.end() for m in re.finditer(r"(?:[.!?:]\s+|\n)[(\"']*", text)}


def names(text: str, rng: random.Random) -> str:
    """People get other names (consistently: the same name twice stays the same new name), and
    the things counted become other things (ducks -> geese)."""
    starts = _sentence_starts(text)
    found = [m.group(1) for m in _CAPITALIZED.finditer(text)
             if m.group(1) not in _NOT_NAMES and (m.start() not in starts or _is_repeated_name(text, m.group(1))
                                                   or text[m.end():m.end() + 2] in ("'s", "\u2019s"))]
    pool = [n for n in _NAMES if n not in text]
    rng.shuffle(pool)
    mapping = {name: pool[i % len(pool)] for i, name in enumerate(dict.fromkeys(found))}

    def name(m: re.Match) -> str:
        return mapping.get(m.group(1), m.group(1))

    text = _CAPITALIZED.sub(name, text)
    return _ENTITY.sub(lambda m: _ENTITIES[m.group(1)], text)


def _is_repeated_name(text: str, word: str) -> bool:
    # a capitalized word seen mid-sentence too is a name even where it opens a sentence
    return any(m.start() not in _sentence_starts(text) for m in re.finditer(rf"(?<![\w]){word}\b", text))


# --- sentence order -------------------------------------------------------------------------------

_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")


def sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE.split(text.strip()) if s]


def reorder(text: str, rng: random.Random) -> str:
    """The sentences in another order: the question first, or the statements shuffled."""
    parts = sentences(text)
    if len(parts) < 2:
        return text
    if rng.random() < 0.5:
        order = [parts[-1]] + parts[:-1]  # the question first, then the facts
    else:
        order = parts[:]
        while order == parts:
            rng.shuffle(order)
    return " ".join(order)


# --- paraphrase: synonyms and reworded clauses ------------------------------------------------------

# (pattern, replacements): common phrasings of word problems and competition questions
_PARAPHRASES = [
    (r"\bHow many\b", ["What number of", "Determine how many", "Count how many"]),
    (r"\bhow many\b", ["what number of", "the number of"]),
    (r"\bHow much\b", ["What amount", "Work out how much"]),
    (r"\bhow much\b", ["what amount"]),
    (r"\bWhat is\b", ["Find", "Determine", "Compute"]),
    (r"\bFind\b", ["Determine", "Compute", "Work out"]),
    (r"\bCompute\b", ["Calculate", "Evaluate", "Find"]),
    (r"\bSimplify\b", ["Reduce", "Write in simplest form"]),
    (r"\bEvaluate\b", ["Compute", "Work out"]),
    (r"\bDetermine\b", ["Find", "Figure out"]),
    (r"\bIf\b", ["Suppose", "Assume", "Given that"]),
    (r"\bbuys\b", ["purchases", "gets"]), (r"\bbought\b", ["purchased", "got"]),
    (r"\bsells\b", ["sold", "trades"]), (r"\bsold\b", ["traded"]),
    (r"\bgives\b", ["hands", "passes"]), (r"\bgave\b", ["handed"]),
    (r"\beach\b", ["every", "per"]), (r"\bevery\b", ["each"]),
    (r"\btotal\b", ["overall", "combined"]), (r"\baltogether\b", ["in all", "in total"]),
    (r"\bhas\b", ["owns", "holds", "possesses"]), (r"\bhave\b", ["own", "hold"]),
    (r"\bwants to\b", ["would like to", "plans to"]), (r"\bneeds to\b", ["has to", "must"]),
    (r"\bremaining\b", ["left over", "left"]), (r"\bremainder\b", ["rest"]),
    (r"\bmakes\b", ["earns", "gets"]), (r"\bspends\b", ["uses up", "pays"]),
    (r"\bday\b", ["single day"]), (r"\bweek\b", ["7-day week"]),
    (r"\bstarts with\b", ["begins with", "initially has"]),
    (r"\bpositive integer\b", ["positive whole number"]), (r"\bintegers\b", ["whole numbers"]),
    (r"\bsatisfies\b", ["fulfills", "meets"]), (r"\bsuch that\b", ["so that", "where"]),
    (r"\bsmallest\b", ["least", "minimum"]), (r"\blargest\b", ["greatest", "maximum"]),
    (r"\bnumber of\b", ["count of", "quantity of"]), (r"\bprobability\b", ["chance"]),
    (r"\bExpress your answer\b", ["Give your answer", "Write the answer"]),
    (r"\bthe value of\b", ["the value for"]), (r"\bthere are\b", ["there exist", "we have"]),
    (r"\bThere are\b", ["There exist", "We have"]), (r"\bis equal to\b", ["equals"]),
]
_PARAPHRASE = re.compile("|".join(f"({p})" for p, _r in _PARAPHRASES))


def synonyms(text: str, rng: random.Random) -> str:
    """Clause paraphrase: common words and phrases replaced by synonyms (each occurrence with
    probability 0.7; one pass, so a replacement is not replaced again)."""

    def one(m: re.Match) -> str:
        choices = _PARAPHRASES[m.lastindex - 1][1]
        return rng.choice(choices) if rng.random() < 0.7 else m.group(0)

    return _PARAPHRASE.sub(one, text)


# --- wrappers: preamble and suffix --------------------------------------------------------------------

_PREAMBLES = ["Solve:", "Problem 7.", "Q:", "Question:", "Solve the following problem step by step.",
              "Here is a problem from my homework:", "### Problem", "Answer the following question.",
              "Let's solve a math problem together."]
_SUFFIXES = ["Put your final answer in \\boxed{}.", "Answer in a box.", "A:", "Show your work.",
             "Please reason step by step, and put your final answer within \\boxed{}.", "(5 points)",
             "Explain your reasoning.", "Give only the final number."]


def wrapper(text: str, rng: random.Random) -> str:
    """A preamble before and an instruction after the question, as prompt datasets carry them."""
    return f"{rng.choice(_PREAMBLES)}\n{text}\n{rng.choice(_SUFFIXES)}"


# --- formatting: whitespace and LaTeX -----------------------------------------------------------------

_FRAC = re.compile(r"\\[dt]?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}")
_UNICODE = {r"\cdot": "·", r"\times": "×", r"\pi": "π", r"\le": "≤", r"\ge": "≥", r"\leq": "≤", r"\geq": "≥",
            r"\infty": "∞", r"\neq": "≠", r"\theta": "θ", r"\alpha": "α", r"\sqrt": "√"}
_COMMAND = re.compile(r"\\(cdot|times|pi|leq?|geq?|infty|neq|theta|alpha|sqrt)(?![a-zA-Z])")


def formatting(text: str, rng: random.Random) -> str:
    """How a scraped page renders it: fractions as a/b (or \\dfrac), math delimiters gone or
    doubled, LaTeX symbols as Unicode, \\cdot as *, lines re-broken, thousands separators."""
    if rng.random() < 0.7:
        # A mixed number keeps a space ("33\\frac{1}{3}" -> "33 1/3", not the other number 331/3).
        text = _FRAC.sub(lambda m: f"({m.group(1)})/({m.group(2)})" if len(m.group(1) + m.group(2)) > 2
                         else f"{m.group(1)}/{m.group(2)}", re.sub(r"(?<=\d)(?=\\[dt]?frac)", " ", text))
    else:
        text = re.sub(r"\\frac(?![a-z])", r"\\dfrac", text)
    style = rng.random()
    if style < 0.4:
        text = text.replace("$", "")
    elif style < 0.6:
        text = re.sub(r"(?<!\\)\$", "$$", text)
    if rng.random() < 0.6:
        text = _COMMAND.sub(lambda m: _UNICODE.get("\\" + m.group(1), m.group(0)), text)
    else:
        text = text.replace(r"\cdot", "*").replace(r"\times", "*")
    # Thousands separators in whole numbers only (not the decimals of 8.2635).
    text = re.sub(r"(?<![\d.,])(\d{4,})(?![\d]|[.,]\d)", lambda m: f"{int(m.group(1)):,}", text) \
        if rng.random() < 0.5 else text
    text = re.sub(r"(?<=[.?!])\s+", lambda m: rng.choice([" ", "\n", "\n\n", "  "]), text)
    return text.replace("  ", " ") if rng.random() < 0.5 else text


# --- units -----------------------------------------------------------------------------------------

_UNITS = {"dollars": "euros", "dollar": "euro", "cents": "pence", "miles": "kilometers", "mile": "kilometer",
          "pounds": "kilograms", "pound": "kilogram", "feet": "meters", "foot": "meter", "inches": "centimeters",
          "inch": "centimeter", "gallons": "liters", "gallon": "liter", "ounces": "grams", "ounce": "gram",
          "yards": "meters", "yard": "meter", "mph": "km/h", "hours": "hrs", "minutes": "mins"}
_UNIT = re.compile(r"\b(" + "|".join(sorted(_UNITS, key=len, reverse=True)) + r")\b")
_DOLLAR_AMOUNT = re.compile(r"\\?\$(\d[\d,]*(?:\.\d+)?)")


def units(text: str, rng: random.Random) -> str:
    """Other units and currency: $5 -> 5 euros (or €5), miles -> kilometers."""
    euro = rng.random() < 0.5
    if not is_formula(text):  # "$" is currency, not a math delimiter
        text = _DOLLAR_AMOUNT.sub(lambda m: f"€{m.group(1)}" if euro else f"{m.group(1)} euros", text)
    return _UNIT.sub(lambda m: _UNITS[m.group(1)], text)


# --- truncation: a part of the item ------------------------------------------------------------------


def truncation(text: str, rng: random.Random) -> str:
    """A copy cut short or missing a part: its first sentence (the setting), its last (an
    instruction such as "Express your answer as a common fraction."), or its last 10-30% of
    words. Only where what is left still identifies the item: 3+ sentences, or 25+ words."""
    parts = sentences(text)
    if len(parts) >= 3:
        return " ".join(parts[1:] if rng.random() < 0.5 else parts[:-1])
    words = text.split(" ")
    if len(words) < 25:
        return text
    return " ".join(words[:round(len(words) * rng.uniform(0.7, 0.9))])


# --- several at once ---------------------------------------------------------------------------------

SINGLE: dict[str, Callable[[str, random.Random], str]] = {
    "numbers": numbers, "names": names, "reorder": reorder, "synonyms": synonyms, "wrapper": wrapper,
    "formatting": formatting, "units": units, "truncation": truncation,
}


def mixed(text: str, rng: random.Random) -> str:
    """Two or three kinds in a row (a scraped copy rarely shows only one)."""
    for name in rng.sample(sorted(SINGLE), rng.choice([2, 3])):
        text = SINGLE[name](text, rng)
    return text


KINDS: dict[str, Callable[[str, random.Random], str]] = {**SINGLE, "mixed": mixed}


def rewrite(kind: str, text: str, rng: random.Random) -> str:
    return KINDS[kind](text, rng)


def rewrites(items, kinds=tuple(KINDS), seed: int = 0):
    """(kind, item, rewritten text) for every kind and item whose text the kind changed; one
    random stream per (seed, kind, item), so a subset of items gets the same rewrites."""
    for kind in kinds:
        for item in items:
            rng = random.Random(f"rewrite-{seed}-{kind}-{item.benchmark}-{item.item_id}")
            text = KINDS[kind](item.text, rng)
            if text != item.text:
                yield kind, item, text
