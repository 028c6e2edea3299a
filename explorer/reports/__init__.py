"""Reports built from walks: streamed JSON of many tasks (``check --json``/``--jsonl``)."""
