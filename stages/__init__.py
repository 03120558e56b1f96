"""The DVC stages: one entry point per stage (``python -m stages.<name>``), each a thin ``main(argv)`` that
reads its options and params, calls the ``clip_study`` library and writes the stage's outputs."""
