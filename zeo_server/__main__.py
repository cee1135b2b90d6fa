"""`python -m zeo_server --home DIR [--address HOST:PORT]`: serve a home's Living Image."""
import sys

from zeo_server.server import main

sys.exit(main())
