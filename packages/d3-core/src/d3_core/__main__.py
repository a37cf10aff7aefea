"""Runs the ``d3`` command line as ``python -m d3_core``."""

import sys

from d3_core.cli.main import main

sys.exit(main())
