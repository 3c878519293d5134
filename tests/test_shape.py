"""The code's shape, held to the limits the team keeps (a module, a class or a function past
them has taken a second job): measured from the source, so a change that grows one fails here."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).parent.parent
CHECKED = ("exporter", "monitoring", "bench")
MODULE_LINES, CLASS_LINES, FUNCTION_LINES, PARAMETERS = 500, 250, 60, 8
IGNORES = 3  # `# type: ignore`s the type check may carry, each justified beside it


def sources() -> list[Path]:
    return sorted(path for folder in CHECKED for path in (ROOT / folder).rglob("*.py"))


def parameters(function: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    arguments = function.args
    named = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]
    if named and named[0].arg in ("self", "cls"):
        named = named[1:]
    return len(named) + (arguments.vararg is not None) + (arguments.kwarg is not None)


def oversized(path: Path) -> list[str]:
    text = path.read_text()
    name = path.relative_to(ROOT)
    found = []
    if len(text.splitlines()) > MODULE_LINES:
        found.append(f"{name}: {len(text.splitlines())} lines")
    for node in ast.walk(ast.parse(text)):
        if not isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        assert node.end_lineno is not None
        lines = node.end_lineno - node.lineno + 1
        limit = CLASS_LINES if isinstance(node, ast.ClassDef) else FUNCTION_LINES
        if lines > limit:
            found.append(f"{name}:{node.lineno} {node.name}: {lines} lines")
        if not isinstance(node, ast.ClassDef) and parameters(node) > PARAMETERS:
            found.append(f"{name}:{node.lineno} {node.name}: {parameters(node)} parameters")
    return found


def test_no_module_class_or_function_is_past_its_size():
    assert sources(), "nothing was measured"
    assert [problem for path in sources() for problem in oversized(path)] == []


def test_the_limits_are_measured_as_they_read(tmp_path):
    """The measure itself: a function of 61 lines and 9 parameters is caught."""
    body = "\n".join(f"    x{n} = {n}" for n in range(59))
    sample = tmp_path / "sample.py"
    sample.write_text(f"def f(a, b, c, d, e, f, g, h, i):\n{body}\n    return 0\n")
    original = ROOT
    try:
        globals()["ROOT"] = tmp_path
        assert oversized(sample) == ["sample.py:1 f: 61 lines", "sample.py:1 f: 9 parameters"]
    finally:
        globals()["ROOT"] = original


def test_type_ignores_are_few():
    ignores = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in sources()
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if "# type: ignore" in line
    ]
    assert len(ignores) <= IGNORES, ignores
