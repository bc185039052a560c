"""Runs scim2-tester (PyPI), the SCIM 2.0 conformance checker, against Warden's /scim/v2.

Usage: scim_tester.py <scim base url> <token>
Prints one JSON object per check: its title, status, reason and resource type.
"""

import json
import sys

import httpx2
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import check_server

base, token = sys.argv[1], sys.argv[2]
http = httpx2.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30)
client = SyncSCIMClient(http)
results = check_server(client, raise_exceptions=False)
print(
    json.dumps(
        [
            {
                "title": r.title,
                "status": r.status.name,
                "reason": r.reason,
                "resource_type": getattr(r, "resource_type", None),
            }
            for r in results
        ]
    )
)
