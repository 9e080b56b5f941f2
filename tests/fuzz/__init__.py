"""API fuzzing with schemathesis over the whole OpenAPI document: every
operation, as every role and as nobody, with valid and invalid input.
tests/integration/test_fuzz.py runs a few examples of each in `make test`;
`make fuzz` (python -m tests.fuzz) runs many more and prints a summary."""
