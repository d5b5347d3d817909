"""gunicorn entry point for Heat's API.

Heat reads its configuration only from ``--config-file`` on the command line, so the file named by
DATAOPS_HEAT_CONF replaces gunicorn's own arguments before the application is imported.
"""

import os
import sys

sys.argv = [sys.argv[0], "--config-file", os.environ["DATAOPS_HEAT_CONF"]]

from heat.wsgi.api import application  # noqa: E402,F401
