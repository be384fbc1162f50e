"""Stand-in for Ubuntu's apport hook, which Debian's own /etc/python3.X/sitecustomize.py imports
and installs when present. The image test base carries it so a test can see that the base's
sitecustomize still runs under the sparkctl one (it sets `sys.base_sitecustomize_ran`)."""

import sys


def install():
    sys.base_sitecustomize_ran = True
