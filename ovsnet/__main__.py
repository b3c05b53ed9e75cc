"""``python -m ovsnet`` is the ``ovsnet`` command."""

import sys

from .cli import main

sys.exit(main())
