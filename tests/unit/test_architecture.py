"""The house's rules: layer contracts (import-linter) and where things may be spelled."""

from __future__ import annotations

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
