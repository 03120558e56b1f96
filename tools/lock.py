"""The exact versions the committed results were made with, in ``constraints.txt`` (pip's ``-c``).

    python -m tools.lock           # write constraints.txt from this environment, after a fresh install
    python -m tools.lock --check   # list each package where this environment differs from it, exit 1
                                   # (the project and the extras installed here: test alone, or test and ray)

pyproject.toml keeps ranges, for people who add the library to an environment of their own; the quick start
and ``.ci/run`` install with ``-c constraints.txt``, so a fresh clone gets the versions that made the committed
numbers (a different scikit-learn or torch can move a probe's top-1 in the fourth decimal). The lock holds the
whole dependency closure of the project and its extras (test, ray), read from the installed packages'
metadata, so packages installed by hand beside it (a linter) stay out. Versions are written without their local
label (torch 2.13.0, not 2.13.0+cpu), so the same line admits the CPU and the CUDA builds.
"""

from __future__ import annotations

import argparse
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "constraints.txt"
PROJECT = "clip-study"
EXTRAS = ("test", "ray")  # every extra .ci/run installs
HEADER = """\
# The exact versions the committed results were made with: the dependency closure of clip-study[test,ray].
# Install with: pip install -c constraints.txt -e ".[test]"   (the README's quick start; .ci/run adds ray)
# Written by `python -m tools.lock` after a fresh install; `python -m tools.lock --check` compares.
"""


def public_version(version: str) -> str:
    """``2.13.0+cpu`` -> ``2.13.0``: pip's ``==2.13.0`` admits every local build of that release."""
    return Version(version).public


def closure(project: str = PROJECT, extras: tuple[str, ...] = EXTRAS) -> dict[str, str]:
    """Canonical name -> installed public version of every package ``project[extras]`` needs, transitively."""
    pinned: dict[str, str] = {}
    todo = [(project, frozenset(extras))]
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        name, wanted_extras = todo.pop()
        if (name, wanted_extras) in seen:
            continue
        seen.add((name, wanted_extras))
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            raise SystemExit(f"tools.lock: {name} is not installed; install the project first: "
                             f"pip install -e '.[{','.join(EXTRAS)}]'") from None
        if canonicalize_name(name) != canonicalize_name(project):
            pinned[canonicalize_name(name)] = public_version(dist.version)
        for line in dist.requires or []:
            requirement = Requirement(line)
            environments = [{"extra": extra} for extra in wanted_extras] or [{"extra": ""}]
            if requirement.marker and not any(requirement.marker.evaluate(env) for env in environments):
                continue
            todo.append((requirement.name, frozenset(requirement.extras)))
    return pinned


def installed_extras(project: str = PROJECT, extras: tuple[str, ...] = EXTRAS) -> tuple[str, ...]:
    """The extras of ``project`` whose own requirements are all installed (the quick start installs test only)."""
    requires = [Requirement(line) for line in metadata.distribution(project).requires or []]
    def installed(name: str) -> bool:
        try:
            metadata.distribution(name)
            return True
        except metadata.PackageNotFoundError:
            return False
    return tuple(extra for extra in extras
                 if all(installed(requirement.name) for requirement in requires
                        if requirement.marker and requirement.marker.evaluate({"extra": extra})))


def render(pins: dict[str, str]) -> str:
    return HEADER + "".join(f"{name}=={version}\n" for name, version in sorted(pins.items()))


def parse(text: str) -> dict[str, str]:
    """The ``name==version`` lines of a constraints file."""
    pins = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = version
    return pins


def differences(locked: dict[str, str], installed: dict[str, str], complete: bool = True) -> list[str]:
    """One line per package whose installed version is not the locked one, or that only one side has (a locked
    package not installed counts only for a ``complete`` install, one with every extra)."""
    lines = []
    for name in sorted((locked.keys() if complete else set()) | installed.keys()):
        want, have = locked.get(name), installed.get(name)
        if want != have:
            lines.append(f"{name}: constraints.txt {want or 'has no line'}, installed {have or 'not needed'}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare this environment with constraints.txt")
    args = parser.parse_args()
    extras = installed_extras() if args.check else EXTRAS
    installed = closure(extras=extras)
    if not args.check:
        LOCK.write_text(render(installed))
        print(f"tools.lock: wrote {len(installed)} pins to {LOCK.name}")
        return
    problems = differences(parse(LOCK.read_text()), installed, complete=extras == EXTRAS)
    for line in problems:
        print(line)
    if problems:
        sys.exit(f"tools.lock: this environment differs from constraints.txt in {len(problems)} package(s): "
                 f"reinstall with pip install -c constraints.txt -e '.[{','.join(EXTRAS)}]', "
                 f"or rewrite the lock with python -m tools.lock")
    print(f"tools.lock: this environment matches constraints.txt ({len(installed)} packages, "
          f"extras: {', '.join(extras) or 'none'})")


if __name__ == "__main__":
    main()
