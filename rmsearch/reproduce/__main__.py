"""`python -m rmsearch.reproduce seed-ensembles --out DIR ...` (the same as `rmsearch reproduce ...`)."""

import sys

from rmsearch.launch.cli import main

sys.exit(main(["reproduce", *sys.argv[1:]]))
