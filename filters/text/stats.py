"""Vectorized text statistics shared by the cheap rules.

Words are tokenized for a whole batch at once by polars (Rust regex), hashed to 64 bits, and
the per-sample n-gram statistics run in one numba-compiled pass over the flat hash array with
open-addressing tables: no Python per word. Numbers are character shares, as in Gopher.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
import pyarrow as pa
from numba import njit

WORD_PATTERN = r"[^\W_]+"  # alphanumeric runs: LaTeX markup and punctuation are not words


@dataclass
class Words:
    hashes: np.ndarray  # uint64, one per word, all samples concatenated
    chars: np.ndarray  # float64 word lengths
    offsets: np.ndarray  # int64, sample i has words offsets[i]:offsets[i+1]

    @property
    def counts(self) -> np.ndarray:
        return np.diff(self.offsets)


@dataclass
class Units:
    hashes: np.ndarray  # uint64, one per unit (line, paragraph, opening), all samples concatenated
    offsets: np.ndarray  # int64, sample i has units offsets[i]:offsets[i+1]


@dataclass
class Scan:
    words: Words
    lines: Units  # lines of 20+ bytes (stripped)
    paragraphs: Units  # paragraphs (runs of non-blank lines) of 20+ bytes
    openings: Units  # the first 4 words of each paragraph


def utf8_buffer(texts: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """The texts' UTF-8 bytes and int64 offsets, without copying each string into Python."""
    arr = texts.fill_null("").to_arrow()
    if not pa.types.is_large_string(arr.type):
        arr = arr.cast(pa.large_string())
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64)[arr.offset:arr.offset + len(arr) + 1]
    data = arr.buffers()[2]
    return (np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8)), offsets


_FNV, _PRIME = np.uint64(14695981039346656037), np.uint64(1099511628211)


@njit(cache=True)
def _scan(data, offsets, min_unit_bytes, opening_words):
    n = len(offsets) - 1
    total = offsets[-1] - offsets[0]
    w_hash = np.empty(total // 2 + n + 1, np.uint64)
    w_len = np.empty(total // 2 + n + 1, np.float64)
    w_off = np.zeros(n + 1, np.int64)
    newlines = 0
    for i in range(offsets[0], offsets[-1]):
        if data[i] == 10:
            newlines += 1
    cap = newlines + n + 1
    l_hash = np.empty(cap, np.uint64)
    l_off = np.zeros(n + 1, np.int64)
    p_hash = np.empty(cap, np.uint64)
    p_off = np.zeros(n + 1, np.int64)
    o_hash = np.empty(cap, np.uint64)
    o_off = np.zeros(n + 1, np.int64)
    nw = nl = np_ = no = 0
    for s in range(n):
        a, b = offsets[s], offsets[s + 1]
        in_word = False
        wh = _FNV
        wl = 0
        # current line: hash of its stripped content, tracked as content bytes seen so far
        lh = _FNV
        line_bytes = 0
        pending_space = False
        ph = _FNV
        para_bytes = 0
        ohash = _FNV
        o_words = 0
        for i in range(a, b + 1):
            c = data[i] if i < b else np.uint8(10)
            lower = c + 32 if 65 <= c <= 90 else c
            is_word = (48 <= c <= 57) or (97 <= lower <= 122) or c >= 128
            if is_word:
                wh = (wh ^ np.uint64(lower)) * _PRIME
                wl += 1
                in_word = True
            elif in_word:
                w_hash[nw] = wh if wh != 0 else np.uint64(1)
                w_len[nw] = wl
                nw += 1
                if o_words < opening_words:
                    ohash = (ohash ^ wh) * _PRIME
                    o_words += 1
                wh = _FNV
                wl = 0
                in_word = False
            if c == 10 or i == b:
                if line_bytes >= min_unit_bytes:
                    l_hash[nl] = lh if lh != 0 else np.uint64(1)
                    nl += 1
                if line_bytes > 0:  # a non-blank line continues the paragraph
                    ph = (ph ^ lh) * _PRIME
                    para_bytes += line_bytes
                if line_bytes == 0 or i == b:  # blank line or end: close the paragraph
                    if para_bytes >= min_unit_bytes:
                        p_hash[np_] = ph if ph != 0 else np.uint64(1)
                        np_ += 1
                    if o_words > 0:
                        o_hash[no] = ohash if ohash != 0 else np.uint64(1)
                        no += 1
                    ph = _FNV
                    para_bytes = 0
                    ohash = _FNV
                    o_words = 0
                lh = _FNV
                line_bytes = 0
                pending_space = False
            elif c == 32 or c == 9 or c == 13:
                if line_bytes > 0:
                    pending_space = True  # only counts if more content follows (strip)
            else:
                if pending_space:
                    lh = (lh ^ np.uint64(32)) * _PRIME
                    line_bytes += 1
                    pending_space = False
                lh = (lh ^ np.uint64(c)) * _PRIME
                line_bytes += 1
        w_off[s + 1] = nw
        l_off[s + 1] = nl
        p_off[s + 1] = np_
        o_off[s + 1] = no
    return w_hash[:nw], w_len[:nw], w_off, l_hash[:nl], l_off, p_hash[:np_], p_off, o_hash[:no], o_off


def scan(texts: pl.Series, min_unit_bytes: int = 20, opening_words: int = 4) -> Scan:
    """Words (ASCII-lowercased alphanumeric runs; any non-ASCII character counts as a word
    character), lines, paragraphs and paragraph openings of every text, in one pass."""
    data, offsets = utf8_buffer(texts)
    wh, wl, wo, lh, lo, ph, po, oh, oo = _scan(data, offsets, min_unit_bytes, opening_words)
    return Scan(Words(wh, wl, wo), Units(lh, lo), Units(ph, po), Units(oh, oo))


@njit(cache=True)
def _table_size(m):
    size = 16
    while size < 2 * m:
        size *= 2
    return size


@njit(cache=True)
def _gram(h, i, n):
    g = np.uint64(14695981039346656037)
    for k in range(n):
        g = (g ^ h[i + k]) * np.uint64(1099511628211)
    return g if g != 0 else np.uint64(1)


@njit(cache=True)
def _slot(keys, g):
    mask = len(keys) - 1
    j = np.int64(g & np.uint64(mask))
    while keys[j] != 0 and keys[j] != g:
        j = (j + 1) & mask
    return j


@njit(cache=True)
def top_ngram_share(h, chars, offsets, n):
    """Per sample: the largest character mass of one repeated n-gram (its characters times its
    count; Gopher takes the most frequent, we take the heaviest) over all word characters."""
    out = np.zeros(len(offsets) - 1)
    for s in range(len(offsets) - 1):
        a, b = offsets[s], offsets[s + 1]
        if b - a < n:
            continue
        total = 0.0
        for i in range(a, b):
            total += chars[i]
        size = _table_size(b - a)
        keys = np.zeros(size, np.uint64)
        count = np.zeros(size, np.int64)
        best = 0.0
        for i in range(a, b - n + 1):
            g = _gram(h, i, n)
            j = _slot(keys, g)
            keys[j] = g
            count[j] += 1
            if count[j] > 1:
                c = 0.0
                for k in range(n):
                    c += chars[i + k]
                if c * count[j] > best:
                    best = c * count[j]
        if total > 0:
            out[s] = min(1.0, best / total)
    return out


@njit(cache=True)
def dup_ngram_coverage(h, chars, offsets, n):
    """Per sample: share of word characters inside n-grams that occur more than once, and the
    longest run of consecutive covered words (a long repeated span)."""
    ns = len(offsets) - 1
    share = np.zeros(ns)
    longest = np.zeros(ns, np.int64)
    for s in range(ns):
        a, b = offsets[s], offsets[s + 1]
        m = b - a
        total = chars[a:b].sum()
        if m < n or total == 0:
            continue
        size = _table_size(m)
        keys = np.zeros(size, np.uint64)
        count = np.zeros(size, np.int64)
        slots = np.empty(m - n + 1, np.int64)
        for i in range(m - n + 1):
            g = _gram(h, a + i, n)
            j = _slot(keys, g)
            keys[j] = g
            count[j] += 1
            slots[i] = j
        until, covered, run, best = -1, 0.0, 0, 0
        for p in range(m):
            if p < m - n + 1 and count[slots[p]] > 1:
                until = p + n - 1
            if p <= until:
                covered += chars[a + p]
                run += 1
                best = max(best, run)
            else:
                run = 0
        share[s] = covered / total
        longest[s] = best
    return share, longest


@njit(cache=True)
def dup_unit_share(h, offsets):
    """Per sample: share of units (lines, paragraphs) that repeat an earlier unit of the sample."""
    out = np.zeros(len(offsets) - 1)
    for s in range(len(offsets) - 1):
        a, b = offsets[s], offsets[s + 1]
        if b - a < 2:
            continue
        size = _table_size(b - a)
        keys = np.zeros(size, np.uint64)
        dups = 0
        for i in range(a, b):
            g = h[i] if h[i] != 0 else np.uint64(1)
            j = _slot(keys, g)
            if keys[j] == g:
                dups += 1
            keys[j] = g
        out[s] = dups / (b - a)
    return out


@njit(cache=True)
def _repeated_unit_share(h, offsets, min_units, min_repeats):
    """Per sample: share of units whose value occurs at least min_repeats times in the sample."""
    out = np.zeros(len(offsets) - 1)
    for s in range(len(offsets) - 1):
        a, b = offsets[s], offsets[s + 1]
        if b - a < min_units:
            continue
        size = _table_size(b - a)
        keys = np.zeros(size, np.uint64)
        count = np.zeros(size, np.int64)
        slots = np.empty(b - a, np.int64)
        for i in range(a, b):
            g = h[i] if h[i] != 0 else np.uint64(1)
            j = _slot(keys, g)
            keys[j] = g
            count[j] += 1
            slots[i - a] = j
        repeated = 0
        for k in range(b - a):
            if count[slots[k]] >= min_repeats:
                repeated += 1
        out[s] = repeated / (b - a)
    return out


def paragraph_openings_repeat(texts: pl.Series, n_words: int = 4, min_paragraphs: int = 6) -> np.ndarray:
    """Per sample: share of paragraphs whose first n words open at least two other paragraphs
    ("Wait, let me check ..." three times and more); 0 when there are too few paragraphs."""
    openings = scan(texts, opening_words=n_words).openings
    return _repeated_unit_share(openings.hashes, openings.offsets, min_paragraphs, 3)
