"""The exceptions the library raises for problems its caller can fix."""

from __future__ import annotations

from pathlib import Path


class UserError(Exception):
    """A bad input the caller can fix: a value out of range, a missing or damaged file, a model that is
    not available offline. The message is one line naming the bad value and the fix (a params file with
    several problems: one such line each).

    The library speaks of values, files and arguments, never of params keys: the DVC stages add the key
    the value came from (``clip_study.pipeline.params.for_param``) and print the line without a traceback.
    """


class BadFileError(UserError):
    """A file that is missing or cannot be read as what it should hold: ``path``, what is wrong with it
    (``problem``, with the line where known) and what to do (``fix``). The same problem calls for another
    fix in a file a user wrote (correct it) than in one a pipeline stage wrote (rebuild it), so readers
    take the fix from their caller."""

    def __init__(self, path: str | Path, problem: str, fix: str) -> None:
        self.path, self.problem, self.fix = str(path), problem, fix
        super().__init__(f"{path}: {problem}; {fix}")


def shown(value: object, limit: int = 80) -> str:
    """A value as written in messages: its repr, cut short so an error stays one readable line."""
    text = repr(value).replace("\n", " ")
    return text if len(text) <= limit else text[:limit - 3] + "..."
