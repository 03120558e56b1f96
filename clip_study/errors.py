"""The one exception the library raises for a problem its caller can fix."""

from __future__ import annotations


class UserError(Exception):
    """A bad input the caller can fix: a value out of range, a missing or damaged file, a model that is
    not available offline. The message is one line naming the bad value and the fix.

    The library speaks of values, files and arguments, never of params keys: the DVC stages add the key
    the value came from (``clip_study.pipeline.params.for_param``) and print the line without a traceback.
    """


def shown(value: object, limit: int = 80) -> str:
    """A value as written in messages: its repr, cut short so an error stays one readable line."""
    text = repr(value).replace("\n", " ")
    return text if len(text) <= limit else text[:limit - 3] + "..."
