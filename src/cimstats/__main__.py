"""Allow ``python -m cimstats``."""

import sys

from cimstats.cli.main import main

sys.exit(main())
