"""A real SAML 2.0 identity provider for the tests: pysaml2 (PyPI), signing with Debian's
xmlsec1. It makes its own RSA key and certificate, publishes its metadata, learns a service
provider's metadata when told, answers AuthnRequests (HTTP-Redirect binding) and IdP-initiated
sign-ins with real signed responses — and, on request, forges them with the same library:
another audience, expired, another InResponseTo, unsigned, signed with SHA-1, the signed XML
changed afterwards, or wrapped (XSW 1-8, after Somorovsky et al., "On Breaking SAML").

Usage: saml_idp.py PORT
  GET  /metadata                     the IdP's metadata
  POST /sp                           body: an SP's metadata XML, loaded
  GET  /sso?SAMLRequest=&RelayState=&user=&forge=JSON
  GET  /unsolicited?sp=&acs=&user=&forge=JSON     (IdP-initiated)
Both sign-in answers are JSON: {"acs", "SAMLResponse", "RelayState", "xml"}. Without `user`,
/sso is what a browser sees: a sign-in page whose form (GET /sso/login) answers with a page
that posts the response to the SP, as an IdP's HTTP-POST binding does.
"""

import base64
import html
import datetime
import json
import re
import sys
import tempfile
import traceback
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from saml2 import BINDING_HTTP_REDIRECT, saml
from saml2.config import IdPConfig
from saml2.metadata import create_metadata_string
from saml2.s_utils import UnknownPrincipal
from saml2.saml import NAMEID_FORMAT_EMAILADDRESS, NameID
from saml2.server import Server
from saml2.sigver import pre_signature_part, signed_instance_factory
from saml2.s_utils import factory
from saml2 import class_name, time_util
from saml2.xmldsig import DIGEST_SHA1, DIGEST_SHA256, SIG_RSA_SHA1, SIG_RSA_SHA256

PORT = int(sys.argv[1])
BASE = f"http://127.0.0.1:{PORT}"
WORK = tempfile.mkdtemp(prefix="warden-saml-idp-")


def make_key():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "warden test idp")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    key_file = os.path.join(WORK, "key.pem")
    cert_file = os.path.join(WORK, "cert.pem")
    with open(key_file, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            )
        )
    with open(cert_file, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    return key_file, cert_file


KEY, CERT = make_key()
CONFIG = {
    "entityid": f"{BASE}/idp",
    "service": {
        "idp": {
            "endpoints": {"single_sign_on_service": [(f"{BASE}/sso", BINDING_HTTP_REDIRECT)]},
            "policy": {"default": {"lifetime": {"minutes": 15}, "attribute_restrictions": None}},
            "name_id_format": [NAMEID_FORMAT_EMAILADDRESS],
            "want_authn_requests_signed": False,
        }
    },
    "key_file": KEY,
    "cert_file": CERT,
    "xmlsec_binary": "/usr/bin/xmlsec1",
    "metadata": {},
    "allow_unknown_attributes": True,
}
cfg = IdPConfig()
cfg.load(CONFIG)
IDP = Server(config=cfg)
AUTHN = {"class_ref": saml.AUTHN_PASSWORD, "authn_auth": f"{BASE}/idp"}


def past(minutes):
    return time_util.in_a_while(minutes=-minutes)


def respond(request_id, acs, sp_entity, user, forge):
    name = forge.get("name_id", user)
    identity = {"mail": [forge.get("mail", user)], "displayName": [forge.get("display_name", "Test Person")]}
    if "groups" in forge:
        identity["groups"] = forge["groups"]
    resp = IDP.create_authn_response(
        identity,
        in_response_to=forge.get("in_response_to", request_id),
        destination=acs,
        sp_entity_id=sp_entity,
        name_id=NameID(format=NAMEID_FORMAT_EMAILADDRESS, text=name),
        authn=AUTHN,
        sign_response=False,
        sign_assertion=False,
    )
    a = resp.assertion
    if "audience" in forge:
        for r in a.conditions.audience_restriction:
            for aud in r.audience:
                aud.text = forge["audience"]
    if forge.get("expired"):
        a.conditions.not_on_or_after = past(10)
        for sc in a.subject.subject_confirmation:
            sc.subject_confirmation_data.not_on_or_after = past(10)
    if "recipient" in forge:
        for sc in a.subject.subject_confirmation:
            sc.subject_confirmation_data.recipient = forge["recipient"]
    sha1 = forge.get("sha1", False)
    sign_alg, digest_alg = (SIG_RSA_SHA1, DIGEST_SHA1) if sha1 else (SIG_RSA_SHA256, DIGEST_SHA256)
    sign = forge.get("sign", "assertion")
    to_sign = []
    if sign in ("assertion", "both"):
        a.signature = pre_signature_part(a.id, IDP.sec.my_cert, 2, sign_alg=sign_alg, digest_alg=digest_alg)
        to_sign.append((class_name(a), a.id))
    if sign in ("response", "both"):
        resp.signature = pre_signature_part(resp.id, IDP.sec.my_cert, 1, sign_alg=sign_alg, digest_alg=digest_alg)
        to_sign.append((class_name(resp), resp.id))
    xml = signed_instance_factory(resp, IDP.sec, to_sign) if to_sign else str(resp)
    if isinstance(xml, bytes):
        xml = xml.decode()
    for old, new in forge.get("after_sign", []):
        xml = xml.replace(old, new)
    if "xsw" in forge:
        xml = wrap(xml, int(forge["xsw"]), forge.get("evil", "mallory@example.com"), name)
    return xml


# --- signature wrapping -------------------------------------------------------------------

def element(xml, local):
    """The first element with this local name: (start, end) of its whole text."""
    m = re.search(r"<((?:\w+:)?)" + local + r"[\s>]", xml)
    prefix = m.group(1)
    close = f"</{prefix}{local}>"
    end = xml.index(close, m.start()) + len(close)
    return m.start(), end


def without(xml, local):
    s, e = element(xml, local)
    return xml[:s] + xml[e:]


def evil_copy(xml, ident, evil, name):
    """A copy of an element: another ID, the evil NameID, no signature."""
    out = re.sub(r' ID="[^"]+"', f' ID="{ident}"', xml, count=1)
    out = out.replace(name, evil)
    if "Signature" in out:
        try:
            out = without(out, "Signature")
        except (AttributeError, ValueError):
            pass
    return out


def strip_decl(xml):
    return re.sub(r"^<\?xml[^>]*\?>\s*", "", xml)


def wrap(xml, variant, evil, name):
    xml = strip_decl(xml)
    a_s, a_e = element(xml, "Assertion")
    assertion = xml[a_s:a_e]
    evil_assertion = evil_copy(assertion, "_evil_assertion", evil, name)
    if variant in (1, 2):
        # The signed Response kept whole, inside (1: its Signature; 2: first child of) a copy
        # of itself that carries the evil assertion and no signature of its own.
        evil_response = evil_copy(xml[:a_s] + evil_assertion + xml[a_e:], "_evil_response", evil, name)
        root_end = evil_response.index(">") + 1
        if variant == 1:
            i_s, i_e = element(evil_response, "Issuer")
            return evil_response[:i_e] + "<ds:Signature xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\"><ds:Object>" + xml + "</ds:Object></ds:Signature>" + evil_response[i_e:]
        return evil_response[:root_end] + xml + evil_response[root_end:]
    sig_s, sig_e = element(assertion, "Signature")
    signature = assertion[sig_s:sig_e]
    bare = assertion[:sig_s] + assertion[sig_e:]
    if variant == 3:  # the evil assertion before the signed one
        body = evil_assertion + assertion
    elif variant == 4:  # the signed assertion inside the evil one
        close = evil_assertion.rindex("</")
        body = evil_assertion[:close] + assertion + evil_assertion[close:]
    elif variant == 5:  # the signature moved into the evil assertion, the original after it
        close = evil_assertion.index(">") + 1
        body = evil_assertion[:close] + signature + evil_assertion[close:] + bare
    elif variant == 6:  # the original inside the signature the evil assertion carries
        sig_close = signature.rindex("</")
        moved = signature[:sig_close] + "<ds:Object xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\">" + bare + "</ds:Object>" + signature[sig_close:]
        close = evil_assertion.index(">") + 1
        body = evil_assertion[:close] + moved + evil_assertion[close:]
    elif variant == 7:  # the signed assertion hidden in Extensions, the evil one in its place
        body = "<samlp:Extensions xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\">" + assertion + "</samlp:Extensions>" + evil_assertion
    elif variant == 8:  # the original, unsigned, in an Object inside the evil one's signature
        sig_close = signature.rindex("</")
        moved = signature[:sig_close] + "<ds:Object xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\">" + bare + "</ds:Object>" + signature[sig_close:]
        close = evil_assertion.rindex("</")
        body = evil_assertion[:close] + moved + evil_assertion[close:]
    else:
        raise ValueError(f"no XSW variant {variant}")
    return xml[:a_s] + body + xml[a_e:]


# --- HTTP -----------------------------------------------------------------------------------

def login_page(q):
    hidden = "".join(
        f'<input type="hidden" name="{k}" value="{html.escape(q[k])}">'
        for k in ("SAMLRequest", "RelayState") if k in q
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>Test IdP</title></head>'
        '<body><main><h1>Test identity provider</h1><form method="get" action="/sso/login">'
        f'{hidden}<label>User <input name="user" type="email"></label> '
        '<label>Groups (comma-separated) <input name="groups"></label> '
        '<button type="submit">Continue</button></form></main></body></html>'
    )


def post_page(acs, xml, relay):
    encoded = base64.b64encode(xml.encode()).decode()
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>Signing in</title></head>'
        f'<body onload="document.forms[0].submit()"><form method="post" action="{html.escape(acs)}">'
        f'<input type="hidden" name="SAMLResponse" value="{encoded}">'
        f'<input type="hidden" name="RelayState" value="{html.escape(relay)}">'
        '<noscript><button type="submit">Continue</button></noscript></form></body></html>'
    )


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def send(self, code, body, ctype="application/json"):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(code)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        length = int(self.headers.get("content-length", 0))
        body = self.rfile.read(length).decode()
        if self.path == "/sp":
            IDP.metadata.load("inline", body)
            return self.send(204, b"")
        self.send(404, "{}")

    def do_GET(self):
        url = urlparse(self.path)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        forge = json.loads(q.get("forge", "{}"))
        try:
            if url.path == "/metadata":
                md = create_metadata_string(None, IDP.config, 4, None, None, None, None, None)
                return self.send(200, md, "application/samlmetadata+xml")
            if url.path == "/sso" and "user" not in q:
                return self.send(200, login_page(q), "text/html; charset=utf-8")
            if url.path == "/sso/login":
                groups = [g.strip() for g in q.get("groups", "").split(",") if g.strip()]
                if groups:
                    forge["groups"] = groups
                req = IDP.parse_authn_request(q["SAMLRequest"], BINDING_HTTP_REDIRECT)
                msg = req.message
                xml = respond(msg.id, msg.assertion_consumer_service_url, msg.issuer.text, q["user"], forge)
                page = post_page(msg.assertion_consumer_service_url, xml, q.get("RelayState", ""))
                return self.send(200, page, "text/html; charset=utf-8")
            if url.path == "/sso":
                req = IDP.parse_authn_request(q["SAMLRequest"], BINDING_HTTP_REDIRECT)
                msg = req.message
                acs = msg.assertion_consumer_service_url
                xml = respond(msg.id, acs, msg.issuer.text, q["user"], forge)
                relay = q.get("RelayState", "")
            elif url.path == "/unsolicited":
                acs = q["acs"]
                xml = respond(None, acs, q["sp"], q["user"], forge)
                relay = q.get("RelayState", "")
            else:
                return self.send(404, "{}")
        except (UnknownPrincipal, KeyError, ValueError) as e:
            return self.send(400, json.dumps({"error": repr(e)}))
        except Exception:  # noqa: BLE001 - the test reads the cause
            return self.send(500, json.dumps({"error": traceback.format_exc()}))
        out = {
            "acs": acs,
            "SAMLResponse": base64.b64encode(xml.encode()).decode(),
            "RelayState": relay,
            "xml": xml,
        }
        self.send(200, json.dumps(out))


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
    print("READY", flush=True)
    server.serve_forever()
