"""The DVC pipeline's params layer: the schema of the params files, loading and checking them, and what
every stage entry point shares (options, one-line errors). The only part of the library that speaks of
params keys; the rest takes plain values."""
