#!/usr/bin/env python3
"""The original design's training command, kept working: a thin wrapper over ``d3 train``.

    python scripts/train_lightning.py --dataset promoter --arch Tran --gpus 1

Every argument is passed to ``d3 train`` unchanged (see ``d3 train --help``).
"""

import sys

from d3_core.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
