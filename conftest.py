"""The clone's conftest: the suite's plugin for every test here, ``tests/`` included (its fixtures and options)."""
# pytester: the clone's tests run pytest in-process (tests/test_options.py).
pytest_plugins = ("claims.session.plugin", "pytester")
