"""constraints.txt, the versions that made the committed results: it pins every dependency the project
declares, within pyproject's ranges, and every install command of the docs and CI applies it. Plain text work."""

from __future__ import annotations

import re
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tools import lock
from tools.lock import ROOT

INSTALL = re.compile(r"pip install [^\n`]*-e \S*\.\[")  # an install of this project, in any doc or script


def declared_requirements(extras: tuple[str, ...] = lock.EXTRAS) -> list[Requirement]:
    """pyproject.toml's dependencies and those of ``extras``."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = project["dependencies"] + [line for extra in extras for line in project["optional-dependencies"][extra]]
    return [Requirement(line) for line in lines]


def test_the_lock_pins_every_declared_dependency_inside_its_range():
    pins = lock.parse(lock.LOCK.read_text())
    for requirement in declared_requirements():
        version = pins.get(canonicalize_name(requirement.name))
        assert version, f"constraints.txt has no line for {requirement.name}: python -m tools.lock"
        assert requirement.specifier.contains(version, prereleases=True), (requirement, version)


def test_every_install_of_the_project_in_the_docs_and_ci_applies_the_lock():
    texts = {path.relative_to(ROOT).as_posix(): path.read_text()
             for path in [ROOT / "README.md", ROOT / ".ci" / "run", *sorted((ROOT / "docs").glob("*.md"))]}
    installs = [(name, match.group(0)) for name, text in texts.items() for match in INSTALL.finditer(text)]
    assert any(name == ".ci/run" for name, _ in installs) and any(name == "README.md" for name, _ in installs)
    unlocked = [(name, command) for name, command in installs if "-c constraints.txt" not in command]
    assert not unlocked, unlocked


def test_a_local_build_label_is_dropped_so_one_pin_admits_the_cpu_and_cuda_builds():
    assert lock.public_version("2.13.0+cpu") == "2.13.0" == lock.public_version("2.13.0")


def test_the_check_names_each_package_that_differs_from_the_lock():
    locked = lock.parse("# header\nTorch==2.13.0\nnumpy==2.4.6  # comment\nscipy==1.17.1\n")
    assert locked == {"torch": "2.13.0", "numpy": "2.4.6", "scipy": "1.17.1"}
    assert lock.differences(locked, {"torch": "2.13.0", "numpy": "2.5.0", "pandas": "3.1.1"}) == [
        "numpy: constraints.txt 2.4.6, installed 2.5.0",
        "pandas: constraints.txt has no line, installed 3.1.1",
        "scipy: constraints.txt 1.17.1, installed not needed",
    ]
    # without every extra (the quick start installs test only) a locked package not installed is no difference
    assert lock.differences(locked, {"torch": "2.13.0"}, complete=False) == []


def test_the_closure_of_this_environment_holds_the_direct_dependencies():
    extras = lock.installed_extras()
    assert "test" in extras  # pytest runs this
    installed = lock.closure(extras=extras)
    assert "clip-study" not in installed
    for requirement in declared_requirements(extras):
        assert canonicalize_name(requirement.name) in installed, requirement
