"""`python -m exporter.healthcheck [URL]`: exit 0 when the exporter answers /-/healthy.

For container HEALTHCHECKs: the slim image has no curl. URL defaults to
$HEALTHCHECK_URL, else http://127.0.0.1:10117/-/healthy. A TLS certificate is not verified:
this only asks whether the process on this machine is alive, so a 401 (basic auth is
configured) counts as alive too.
"""

from __future__ import annotations

import os
import ssl
import sys
import urllib.error
import urllib.request

DEFAULT_URL = "http://127.0.0.1:10117/-/healthy"
TIMEOUT_SECONDS = 5.0


def healthy(url: str) -> bool:
    context = ssl._create_unverified_context()  # noqa: S323 - loopback liveness, not trust
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS, context=context) as response:  # noqa: S310
            return bool(response.status == 200)
    except urllib.error.HTTPError as error:
        return error.code == 401
    except (urllib.error.URLError, OSError, ValueError):
        return False


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    url = args[0] if args else os.environ.get("HEALTHCHECK_URL", DEFAULT_URL)
    if healthy(url):
        return 0
    print(f"unhealthy: no answer from {url}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
