"""The include and exclude patterns of the configuration, refused at load when they could
backtrack without end.

Patterns are matched against `project/addon` (at most 513 characters, ids being at most 256)
on the event loop, holding the GIL: a pattern that backtracks catastrophically would stall
polls and scrapes alike. Python's engine backtracks, so a pattern is refused when it has:

- a repetition inside an unbounded one, such as `(a+)+` or `(a{1,3})*`: exponential;
- an alternation inside an unbounded repetition, such as `(a|ab)*` (`(?:a|b)+` is read as a
  character class, and accepted): exponential when the branches overlap;
- a backreference: no bound at all;
- more than MAX_UNBOUNDED unbounded repetitions: `.*a.*b.*c.*d` is polynomial of that degree
  (over 513 characters, four is about 3e9 steps).
"""

from __future__ import annotations

import importlib
import re
from typing import Any

# The standard library's own parser of regular expressions: private, and without type stubs.
sre: Any = importlib.import_module("re._constants")
_parser: Any = importlib.import_module("re._parser")

MAX_UNBOUNDED = 3
_REPEATS = {sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT}


def compile_pattern(text: str) -> re.Pattern[str]:
    """The compiled pattern; ValueError naming why it is refused."""
    try:
        compiled = re.compile(text)
    except re.error as error:
        raise ValueError(f"invalid regular expression {text!r}: {error}") from None
    problem = _backtracking(_parser.parse(text))
    if problem is not None:
        raise ValueError(
            f"regular expression {text!r} could backtrack without end ({problem}): rewrite it "
            "without that (exporter/patterns.py says why)"
        )
    return compiled


def _backtracking(parsed: Any) -> str | None:
    unbounded = [0]
    problem = _walk(list(parsed), inside_unbounded=False, unbounded=unbounded)
    if problem is None and unbounded[0] > MAX_UNBOUNDED:
        problem = f"more than {MAX_UNBOUNDED} unbounded repetitions"
    return problem


def _walk(items: list[Any], *, inside_unbounded: bool, unbounded: list[int]) -> str | None:
    for op, av in items:
        problem = None
        if op in _REPEATS:
            _, high, body = av
            if inside_unbounded and high > 1:
                return "a repetition inside an unbounded repetition"
            endless = high == sre.MAXREPEAT
            unbounded[0] += endless
            problem = _walk(
                list(body), inside_unbounded=inside_unbounded or endless, unbounded=unbounded
            )
        elif op is sre.BRANCH:
            if inside_unbounded:
                return "an alternation inside an unbounded repetition"
            for branch in av[1]:
                problem = problem or _walk(
                    list(branch), inside_unbounded=inside_unbounded, unbounded=unbounded
                )
        elif op in (sre.GROUPREF, sre.GROUPREF_EXISTS):
            return "a backreference"
        elif op is sre.SUBPATTERN:
            problem = _walk(list(av[-1]), inside_unbounded=inside_unbounded, unbounded=unbounded)
        elif op in (sre.ASSERT, sre.ASSERT_NOT):
            problem = _walk(list(av[1]), inside_unbounded=inside_unbounded, unbounded=unbounded)
        elif op is sre.ATOMIC_GROUP:
            problem = _walk(list(av), inside_unbounded=inside_unbounded, unbounded=unbounded)
        if problem is not None:
            return problem
    return None
