#!/usr/bin/env python3
"""The original design's conversion command, kept working: a thin wrapper over ``d3 convert``.

    python scripts/convert_checkpoints.py model_zoo/promoter/checkpoints/

Converts every checkpoint found under the directory (or the one file given) into d3's format and
reports each file. Every argument is passed to ``d3 convert`` unchanged (see ``d3 convert --help``).
"""

import sys

from d3_core.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["convert", *sys.argv[1:]]))
