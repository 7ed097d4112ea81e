"""What a person reads: the verdict matrix (the report's and the README's table, with its findings),
the HTML report page and its figures, the run's results turned into that report, and the README's
generated tables. The terminal table is the run's own, in ``claims/conftest.py``."""
