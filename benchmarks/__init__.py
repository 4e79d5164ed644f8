"""pytest-benchmark suites of recforge and its peers (a package, so that its conftest and helpers
never shadow tests/conftest.py when both folders run in one session)."""
