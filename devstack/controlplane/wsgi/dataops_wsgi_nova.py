"""gunicorn entry point for nova's API.

The application parses sys.argv with oslo.config at import time; gunicorn's own arguments would make it
exit, so they are hidden first. The configuration comes from the OS_*_CONFIG_* environment variables.
"""

import sys

sys.argv = sys.argv[:1]

from nova.wsgi.osapi_compute import application  # noqa: E402,F401
