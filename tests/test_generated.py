"""Every generated file or section is current (python -m tools.sync): the code deps in dvc.yaml and
demo/dvc.yaml, the params reference, and whatever else tools/sync.py lists; a planted drift is caught."""

import shutil
import subprocess
import sys

from tools import params_doc, sync
from tools.imports import ROOT


def test_every_generated_file_is_current():
    assert list(sync.stale()) == [], "run python -m tools.sync and commit what it rewrites"


def test_the_check_command_names_a_stale_file_and_exits_1(tmp_path):
    for name in (*params_doc.PARAMS_FILES, *params_doc.PIPELINES, params_doc.PATH):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, tmp_path / name)
    assert params_doc.render(tmp_path) == (ROOT / params_doc.PATH).read_text()
    params = tmp_path / "params.yaml"
    params.write_text(params.read_text().replace("  epochs: 10\n", "  epochs: 12\n"))
    rendered = params_doc.render(tmp_path)
    assert "| `probe.epochs` | `12` | `" in rendered and rendered != (ROOT / params_doc.PATH).read_text()
    done = subprocess.run([sys.executable, "-m", "tools.sync", "--check"], cwd=ROOT, capture_output=True, text=True)
    assert (done.returncode, done.stdout) == (0, "")
