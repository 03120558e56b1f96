"""What each metrics file holds, defined once: one module per stage, for the files that stage writes, used by
the stage that writes them and by every reader (later stages, the reports, the tests, docs/metrics.md).

The modules import only ``record`` (the JSON codec), ``scores`` (parts several files share) and
``clip_study.files``: a stage that imports the definition of a file pays for no library it does not run, and
an edit to one stage's definitions reruns only that stage and the stages that read its files.
"""
