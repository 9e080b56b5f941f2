"""The auditor's tool, `ksmart-audit`: export a file's events or the whole log,
verify the hash chains and global positions, replay a file with the same
projector the platform uses, see a file as of any moment, and compare the
replay with what the platform shows.

    source.py  where events come from: the gateway (an auditor's token) or,
               for operators, the applications database (read-only)
    checks.py  the chain, version and position checks, one event at a time,
               and the field-by-field comparison of two views of a file
    report.py  progress and the human report, on stderr
    cli.py     the command itself (`python -m ksmart_audit.cli`)

Nothing here imports the command, so `python -m ksmart_audit.cli`
runs it without a second copy of the module.
"""
