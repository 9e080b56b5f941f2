"""The file's domain: the workflow state machine, the file's state and the
pure functions that decide on commands and project events. Nothing here knows
of nameko, HTTP or SQL."""
