"""Suppression: no hidden count can be recovered from what is published, however the reader reasons."""
from __future__ import annotations

import itertools
import random
from collections import defaultdict

import pytest

from bot.statistics.suppression import Mark, suppress

MIN_CELL = 5


def table(rows: int, columns: int, rng: random.Random, sparse: float) -> tuple[dict, list]:
    """A random table of counts with its row, column and grand totals, as values and sums."""
    inner = {(r, c): 0 if rng.random() < sparse else rng.choice([1, 1, 2, 3, 4, 5, 6, 8, 13, 30])
             for r in range(rows) for c in range(columns)}
    return _with_totals(inner, rows, columns)


def bounds(values: dict, marks: dict, min_cell: int) -> dict:
    """What a reader knows of each count from how it is shown."""
    known = {}
    for key, mark in marks.items():
        if mark is Mark.SHOWN:
            known[key] = (values[key], values[key])
        elif mark is Mark.SMALL:
            known[key] = (0, min_cell - 1)
        else:
            known[key] = (min_cell, 10**6)
    return known


def narrowed(sums: list, known: dict) -> dict:
    """The reader's best bounds by subtraction: each sum narrows each of its counts, until nothing changes."""
    low, high = {k: v[0] for k, v in known.items()}, {k: v[1] for k, v in known.items()}
    changed = True
    while changed:
        changed = False
        for total, parts in sums:
            terms = [(part, 1) for part in parts] + [(total, -1)]
            for key, coefficient in terms:
                rest_low = sum(low[o] if c > 0 else -high[o] for o, c in terms if o != key)
                rest_high = sum(high[o] if c > 0 else -low[o] for o, c in terms if o != key)
                new_low, new_high = (-rest_high, -rest_low) if coefficient > 0 else (rest_low, rest_high)
                if new_low > low[key]:
                    low[key], changed = new_low, True
                if new_high < high[key]:
                    high[key], changed = new_high, True
    return {key: (low[key], high[key]) for key in known}


def recovered(values: dict, sums: list, marks: dict, min_cell: int) -> list:
    found = narrowed(sums, bounds(values, marks, min_cell))
    return [key for key, mark in marks.items() if mark is not Mark.SHOWN and found[key][0] == found[key][1]]


@pytest.mark.parametrize("min_cell", [3, 5])
def test_no_hidden_count_of_a_random_table_is_recovered_by_subtraction(min_cell):
    rng = random.Random(16)
    for _ in range(250):
        values, sums = table(rng.randint(1, 6), rng.randint(1, 6), rng, rng.random())
        marks = suppress(values, sums, min_cell)
        assert recovered(values, sums, marks, min_cell) == [], values
        assert all(marks[key] is not Mark.SHOWN for key, value in values.items() if 0 < value < min_cell)


def test_small_tables_fit_at_least_two_ways_counted_exhaustively():
    """Every table of small numbers consistent with what is published is listed: each hidden count
    takes at least two values among them, so no reasoning at all can recover it."""
    rng = random.Random(7)
    for _ in range(80):
        values = {(r, c): rng.choice([0, 0, 1, 2, 3, 4]) for r in range(2) for c in range(3)}
        values, sums = _with_totals(values, 2, 3)
        marks = suppress(values, sums, 3)
        inner = [key for key in values if "T" not in key and marks[key] is not Mark.SHOWN]
        ranges = [range(0, 3) if marks[key] is Mark.SMALL else range(3, values[("T", "T")] + 1) for key in inner]
        seen: dict = defaultdict(set)
        for guess in itertools.product(*ranges):
            trial, _ = _with_totals(values | dict(zip(inner, guess)), 2, 3)
            if all(_fits(trial[key], values[key], marks[key]) for key in values):
                for key in values:
                    seen[key].add(trial[key])
        assert all(len(seen[key]) >= 2 for key in values if marks[key] is not Mark.SHOWN), (values, marks)


def _with_totals(inner: dict, rows: int, columns: int) -> tuple[dict, list]:
    values = {key: value for key, value in inner.items() if "T" not in key}
    sums = []
    for r in range(rows):
        values[(r, "T")] = sum(values[(r, c)] for c in range(columns))
        sums.append(((r, "T"), [(r, c) for c in range(columns)]))
    for c in [*range(columns), "T"]:
        values[("T", c)] = sum(values[(r, c)] for r in range(rows))
        sums.append((("T", c), [(r, c) for r in range(rows)]))
    return values, sums


def _fits(value: int, true: int, mark: Mark) -> bool:
    """Would a reader who sees `mark` (and, for a shown count, the true value) accept `value`?"""
    if mark is Mark.SHOWN:
        return value == true
    return 0 <= value < 3 if mark is Mark.SMALL else value >= 3


def test_a_lone_small_count_is_shown_as_small_and_a_rectangle_hides_it():
    values = {(r, c): 10 for r in range(3) for c in range(3)}
    values, sums = _with_totals(values | {(0, 0): 1}, 3, 3)
    marks = suppress(values, sums, MIN_CELL)
    assert marks[(0, 0)] is Mark.SMALL
    assert sum(mark is Mark.HIDDEN for mark in marks.values()) == 3, "one rectangle: three more hidden"
    assert all(marks[key] is Mark.SHOWN for key in values if "T" in key), "totals stay published"
    assert recovered(values, sums, marks, MIN_CELL) == []


def test_a_sum_that_does_not_add_up_is_refused():
    with pytest.raises(ValueError):
        suppress({"a": 1, "b": 2, "total": 4}, [("total", ["a", "b"])], MIN_CELL)
