#!/usr/bin/env python3
"""Container health probe without curl: exit 0 when HEALTHCHECK_URL answers 2xx.

Default URL: the app on $SLM_PORT (7860). The engine service sets
HEALTHCHECK_URL=http://127.0.0.1:8000/health, which answers 503 until the model is loaded.
"""

import os
import sys
import urllib.error
import urllib.request

url = os.environ.get("HEALTHCHECK_URL") or f"http://127.0.0.1:{os.environ.get('SLM_PORT', '7860')}/"
try:
    with urllib.request.urlopen(url, timeout=4) as response:
        sys.exit(0 if 200 <= response.status < 300 else 1)
except (urllib.error.URLError, OSError) as exc:
    print(f"unhealthy: {url}: {exc}", file=sys.stderr)
    sys.exit(1)
