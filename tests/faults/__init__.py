"""Fault tests on a PostgreSQL and a RabbitMQ of their own: the machinery
(scenario.py), and the full suite (full_suite.py, `make faults`), which
`make test` does not collect (its name does not start with test_); the quick
version is tests/integration/test_faults_quick.py."""
