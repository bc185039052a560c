"""The peer for scripts/bench-saml: pysaml2 as a service provider verifying the same response
(signature with xmlsec1, audience, recipient, times), N times on one thread.
Usage: saml_sp_peer.py IDP_METADATA_FILE RESPONSE_B64_FILE SP_ENTITY_ID ACS_URL N
"""

import statistics
import sys
import time

from saml2 import BINDING_HTTP_POST
from saml2.client import Saml2Client
from saml2.config import SPConfig

metadata, response_file, entity, acs, n = sys.argv[1:6]
n = int(n)
conf = SPConfig()
conf.load(
    {
        "entityid": entity,
        "service": {
            "sp": {
                "endpoints": {"assertion_consumer_service": [(acs, BINDING_HTTP_POST)]},
                "allow_unsolicited": True,
                "want_assertions_signed": True,
                "want_response_signed": False,
            }
        },
        "metadata": {"local": [metadata]},
        "xmlsec_binary": "/usr/bin/xmlsec1",
    }
)
client = Saml2Client(config=conf)
response = open(response_file).read()
# pysaml2 keeps the ids it has seen (replays): a fresh client per run keeps that out.
times = []
for _ in range(n):
    c = Saml2Client(config=conf)
    t = time.perf_counter()
    r = c.parse_authn_request_response(response, BINDING_HTTP_POST)
    times.append((time.perf_counter() - t) * 1000)
    assert r is not None and r.name_id.text
times.sort()
p = lambda q: times[round((len(times) - 1) * q)]
print(f"pysaml2 SP (peer): n={n} p50={p(0.5):.3f} ms p90={p(0.9):.3f} ms p99={p(0.99):.3f} ms rate={1000 / statistics.mean(times):.0f}/s")
