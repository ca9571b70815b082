"""``python -m linsim.cli`` runs the ``linsim`` command."""

import sys

from linsim.cli import main

sys.exit(main())
