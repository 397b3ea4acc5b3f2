"""The house's rules: layer contracts (import-linter) and where things may be spelled."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_layer_contracts_hold():
    """No cycle; the core imports no flow, task, entry point or demo; pure layers import no Prefect."""
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "BROKEN" not in result.stdout


def test_cli_help_answers_quickly_without_heavy_imports():
    """`callcast <command> --help` must not import Prefect, pandas or the models before parsing."""
    code = (
        "import sys\n"
        "from app.cli import main\n"
        "try:\n"
        "    main(['score', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = [m for m in ('prefect', 'pandas', 'sklearn', 'great_expectations', 'mlflow') if m in sys.modules]\n"
        "print('HEAVY=' + ','.join(heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "HEAVY=\n" in result.stdout or result.stdout.rstrip().endswith("HEAVY="), result.stdout
    assert "--capacity" in result.stdout


def test_every_command_has_help():
    from app.cli import build_parser

    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # argparse keeps them here
    for name, sub in commands.items():
        text = sub.format_help()
        assert text.startswith(f"usage: callcast {name}"), name
        assert (sub.description or "").strip(), f"`callcast {name}` has no description"


LAKE_PATH = re.compile(
    r"(?<![A-Za-z0-9_])(raw|checks|call_lists|forecasts|monitoring|analytics|registry)/|(?<![A-Za-z0-9_])dt="
)
PRODUCTION = ["app", "deployments", "flows", "tasks", "models", "data_checks", "callcast", "demo_company"]


def _string_literals(path: Path) -> list[tuple[int, str]]:
    """String constants of a module (f-string parts included), docstrings excluded."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    ]


def test_no_lake_path_is_spelled_outside_the_catalog():
    """Every lake key comes from callcast/catalog.py: no other module writes raw/, checks/, dt=, …"""
    found = [
        f"{path.relative_to(ROOT)}:{line}: {text[:60]!r}"
        for package in PRODUCTION
        for path in (ROOT / package).rglob("*.py")
        if path != ROOT / "callcast" / "catalog.py"
        for line, text in _string_literals(path)
        if LAKE_PATH.search(text)
    ]
    assert not found, "lake paths spelled outside the catalog:\n" + "\n".join(found)


def test_the_path_check_can_fail(tmp_path):
    sample = tmp_path / "m.py"
    sample.write_text('"""Docstrings may say raw/<table>/dt=…"""\nKEY = f"raw/{1}"\nLABEL = "x dt=2"\n')
    assert sorted(t for _, t in _string_literals(sample) if LAKE_PATH.search(t)) == ["raw/", "x dt=2"]
