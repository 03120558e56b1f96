"""Developer commands of this repository (not part of the library): ``python -m tools.sync`` rewrites every
generated file or section from its source of truth, ``python -m tools.sync --check`` says which are stale."""
