"""One module per params section: its keys, what each may hold and means, and its checks. A stage imports
the sections it reads (and so depends on their checks alone); ``clip_study.pipeline.schema`` gathers all of
them to check a whole params file."""
