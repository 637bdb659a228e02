"""Cell suppression: no published figure, total or difference of totals singles out a child.

One pure function, used by every output (chart, caption, CSV, XLSX, JSON), so they all hide the same.

* Primary: a count from 1 to STATS_MIN_CELL-1 is shown as "<N".
* Secondary: other counts are hidden until no hidden count can be worked out: a zero as "<N" too
  (so "<N" means 0..N-1, and a small count may as well be none), a larger count as hidden ("x").
  The reader is assumed to know every published count, every sum between them (row, column and
  grand totals, and groups of kinds of harm), and those bounds. A hidden count is safe when the
  hidden counts can be changed - each by one, up or down - so that every sum and every bound still
  holds while that count changes: then at least two tables fit all that is published, and the count
  cannot be recovered by subtraction or any other reasoning. Hiding more never makes a safe count
  unsafe, so each is made safe once, in order.
* A count is protected by the cheapest change found: counts hidden already first, then zeros, then
  other cells, smallest first; a total is hidden only when that is much cheaper (it costs three).
"""
from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from enum import StrEnum
from typing import TypeVar

K = TypeVar("K", bound=Hashable)
SEARCH_BUDGET = 3000  # steps of one search for a change; past it, the search counts as failed
MOST_NEW = 8  # the cost a search may spend on newly hidden counts (a lone small count needs three: a rectangle)
TOTAL_COST = 3  # a hidden total costs more than a hidden cell: readers miss it more


class Mark(StrEnum):
    SHOWN = "shown"
    SMALL = "small"  # 0..min_cell-1, shown as "<min_cell"
    HIDDEN = "hidden"  # min_cell or more, hidden so that a small count cannot be worked out


def suppress(values: Mapping[K, int], sums: Iterable[tuple[K, Sequence[K]]], min_cell: int) -> dict[K, Mark]:
    """How each count may be published. `sums`: (total, parts) with total == sum of parts."""
    return _Problem(values, list(sums), min_cell).solve()


class _OutOfSteps(Exception):
    pass


class _Problem:
    def __init__(self, values: Mapping[K, int], sums: list[tuple[K, Sequence[K]]], min_cell: int) -> None:
        if min_cell < 1:
            raise ValueError("min_cell must be at least 1")
        self.values, self.min_cell = dict(values), min_cell
        self.order = {key: index for index, key in enumerate(self.values)}
        # Each sum as terms (key, coefficient) adding up to zero: parts +1, the total -1.
        self.lines: list[list[tuple[K, int]]] = []
        self.member: dict[K, list[tuple[int, int]]] = {key: [] for key in self.values}
        self.totals: set[K] = set()
        for total, parts in sums:
            terms = [(part, 1) for part in parts] + [(total, -1)]
            if sum(self.values[key] * coefficient for key, coefficient in terms) != 0:
                raise ValueError(f"{total!r} is not the sum of its parts")
            for key, coefficient in terms:
                self.member[key].append((len(self.lines), coefficient))
            self.lines.append(terms)
            self.totals.add(total)
        self.marks = {key: Mark.SMALL if 0 < value < min_cell else Mark.SHOWN for key, value in self.values.items()}

    def solve(self) -> dict[K, Mark]:
        safe: set[K] = set()
        waiting = [key for key in self.values if self.marks[key] is Mark.SMALL]
        while waiting:
            key = waiting.pop(0)
            if key in safe:
                continue
            change = next((found for allowed in range(MOST_NEW + 1) if (found := self._change(key, allowed))), None)
            if change is not None:
                for other in change:
                    if self.marks[other] is Mark.SHOWN:
                        self._hide(other)
                safe.update(change)
                continue
            # No change within reach: hide all that can be hidden around it, then look again.
            around = [other for line, _ in self.member[key] for other, _ in self.lines[line] if self._can_hide(other)]
            for other in around:
                self._hide(other)
            if around:
                waiting.append(key)
        return self.marks

    def _can_hide(self, key: K) -> bool:
        return self.marks[key] is Mark.SHOWN and (self.values[key] == 0 or self.values[key] >= self.min_cell)

    def _hide(self, key: K) -> None:
        self.marks[key] = Mark.SMALL if self.values[key] < self.min_cell else Mark.HIDDEN

    def _fits(self, key: K, step: int) -> bool:
        """Would the reader accept the count changed by `step`, given how it is (or would be) shown?"""
        value = self.values[key] + step
        if self.marks[key] is Mark.SMALL or (self.marks[key] is Mark.SHOWN and self.values[key] < self.min_cell):
            return 0 <= value < self.min_cell
        return value >= self.min_cell

    def _change(self, key: K, allowed: int) -> dict[K, int] | None:
        """A change of hidden counts by -1/+1 each, moving `key`, that keeps every sum; it may hide at
        most `allowed` counts that are shown now."""
        for step in (1, -1):
            if self._fits(key, step):
                search = _Search(self, allowed)
                try:
                    if search.run(key, step):
                        return search.change
                except _OutOfSteps:
                    continue
        return None


class _Search:
    """Depth first: balance the sum with the fewest ways left, preferring counts hidden already."""

    def __init__(self, problem: _Problem, allowed: int) -> None:
        self.problem, self.allowed = problem, allowed
        self.change: dict = {}
        self.residual: dict[int, int] = {}
        self.new = 0
        self.steps = 0

    def run(self, key: K, step: int) -> bool:
        self._apply(key, step)
        return self._next()

    def _apply(self, key: K, step: int) -> None:
        self.change[key] = step
        self.new += self._cost(key)
        for line, coefficient in self.problem.member[key]:
            residual = self.residual.get(line, 0) + coefficient * step
            if residual:
                self.residual[line] = residual
            else:
                self.residual.pop(line, None)

    def _cost(self, key: K) -> int:
        if self.problem.marks[key] is not Mark.SHOWN:
            return 0
        return TOTAL_COST if key in self.problem.totals else 1

    def _undo(self, key: K) -> None:
        step = self.change.pop(key)
        self._apply(key, -step)
        del self.change[key]
        self.new -= 2 * self._cost(key)

    def _options(self, line: int) -> list[tuple[K, int]]:
        problem, residual = self.problem, self.residual[line]
        found = []
        for key, coefficient in problem.lines[line]:
            if key in self.change:
                continue
            is_new = problem.marks[key] is Mark.SHOWN
            if is_new and (self.new + self._cost(key) > self.allowed or not problem._can_hide(key)):
                continue
            step = -coefficient if residual > 0 else coefficient
            if problem._fits(key, step):
                found.append((key, step))
        found.sort(key=lambda option: (problem.marks[option[0]] is Mark.SHOWN, problem.values[option[0]] > 0,
                                       option[0] in problem.totals, problem.values[option[0]], problem.order[option[0]]))
        return found

    def _next(self) -> bool:
        self.steps += 1
        if self.steps > SEARCH_BUDGET:
            raise _OutOfSteps
        if not self.residual:
            return True
        options = min((self._options(line) for line in sorted(self.residual)), key=len)
        for key, step in options:
            self._apply(key, step)
            if self._next():
                return True
            self._undo(key)
        return False


def hidden_keys(marks: Mapping[K, Mark]) -> set[K]:
    """The counts not published as numbers."""
    return {key for key, mark in marks.items() if mark is not Mark.SHOWN}
