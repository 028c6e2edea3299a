"""One widget per model object: the triage card, the task table, a walk, a frame, ..."""
