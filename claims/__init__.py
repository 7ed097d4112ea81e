"""The notebook's claims, as pytest tests, and what judges, shows and runs them.

Here, what a reader of the notebook looks for:

- ``test_block1_*.py`` ... ``test_block4_*.py``: one file per notebook block, one test per claim;
  ``test_notebook_erratum.py``: where the notebook's code says something other than its text;
  ``test_image_folder.py``: block 3's sparsity over a folder of one's own images (``--images``);
- ``conftest.py``: the end of a claim run (the verdict table, the report, the recording options);
- the recorded data: ``nulls.json`` (the random initialisations' values, per architecture),
  ``expectations.toml`` (the recorded verdicts, the regression gate), ``object_boxes.csv`` (the boxed
  objects of the occlusion claim).

Beside them, by role:

- :mod:`claims.judging`: what makes a verdict (rules, statistics, measurements, nulls, calibration);
- :mod:`claims.showing`: what a person reads (terminal table's matrix, the HTML report, the README's tables);
- :mod:`claims.session`: what runs a pytest session (options, the model zoo, ``python -m claims test``, the fetch,
  the folder runner);
- :mod:`claims.tools`: the suite's own checks of itself (deliberate breaks, mutants, strategies, the sweep);
- :mod:`claims.bench`: the benchmarks.

Commands: ``python -m claims test | fetch | readme | docs | recorded | calibration | sweep`` (``python -m claims``
lists them).
"""
from pathlib import Path

RECORDED_DATA = Path(__file__).parent  # nulls.json, expectations.toml, object_boxes.csv
