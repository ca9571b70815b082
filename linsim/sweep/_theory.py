"""The sweep's robust ``theory`` import (see :mod:`linsim._theory_check`)."""

from linsim._theory_check import TheoryShadowedError, import_theory

__all__ = ["TheoryShadowedError", "import_theory"]
