"""`python -m selfcritic ...`: the same as the `selfcritic` console script."""

import sys

from selfcritic.cli import main

sys.exit(main())
