"""``python -m ecoalign``: the same as the ``ecoalign`` command."""

import sys

from ecoalign.cli import main

sys.exit(main())
