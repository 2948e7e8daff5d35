import sys

from rmsearch.launch.cli import main

sys.exit(main())
