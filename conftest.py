"""The clone's conftest: the suite's plugin for every test here, ``tests/`` included (its fixtures and options)."""
pytest_plugins = ("claims.session.plugin",)
