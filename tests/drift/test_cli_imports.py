"""``iotsphere drift --help`` answers without loading the statistics (scipy, scikit-learn, onnx): they are
imported when a check runs, so reading help or history does not cost seconds."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("scipy", "sklearn", "onnx")


def test_the_drift_commands_load_no_statistics_until_run() -> None:
    probe = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from iotsphere.cli import main\n"
        "assert CliRunner().invoke(main, ['drift', 'check', '--help']).exit_code == 0\n"
        f"print(sorted(name for name in {HEAVY!r} if name in sys.modules))\n"
    )

    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
