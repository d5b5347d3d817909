"""gunicorn entry point for placement's API.

The application parses sys.argv with oslo.config at import time; gunicorn's own arguments would make it
exit, so they are hidden first. The configuration comes from the OS_*_CONFIG_* environment variables.
"""

import sys

sys.argv = sys.argv[:1]

from placement.wsgi.api import application  # noqa: E402,F401
