"""The patched moto server (tests/tools/moto_server_patched.py) with the faults `mesh bootstrap`
must handle, which plain moto never produces. They are injected in front of moto (a WSGI
wrapper), so moto's own behaviour is unchanged otherwise, and read from the JSON file named by
$MESH_MOTO_FAULTS at every request, so a test switches them on and off between calls:

    {"deny_s3": ["versioning", "policy"],      S3 GET ?versioning / ?policy / ?tagging /
                                               ?encryption / ?lifecycle / ?publicAccessBlock on
                                               any bucket answer 403 AccessDenied;
     "fail_kms": ["CreateAlias", "GetKeyPolicy"]}  these KMS operations answer 400
                                               AccessDeniedException (credentials without them).

Every injected answer is appended to $MESH_MOTO_LOG (one line each), so a test can tell its
fault was hit.

Usage: moto_bootstrap_faults.py PATCHED_SERVER -H 127.0.0.1 -p PORT
"""
import json
import os
import runpy
import sys
from urllib.parse import parse_qs

from moto.moto_server.werkzeug_app import DomainDispatcherApplication

FAULTS = os.environ.get("MESH_MOTO_FAULTS")
LOG = os.environ.get("MESH_MOTO_LOG")


def faults() -> tuple[set, set]:
    try:
        with open(FAULTS) as f:
            v = json.load(f)
    except (TypeError, FileNotFoundError, ValueError):
        return set(), set()
    return set(v.get("deny_s3", [])), set(v.get("fail_kms", []))


def note(what: str) -> None:
    if LOG:
        with open(LOG, "a") as f:
            f.write(what + "\n")


_call = DomainDispatcherApplication.__call__


def call(self, environ, start_response):
    method = environ.get("REQUEST_METHOD", "")
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    DENY_S3, FAIL_KMS = faults()
    if target.startswith("TrentService."):
        op = target.split(".", 1)[1]
        if op in FAIL_KMS:
            note(f"kms:{op}")
            # Not a throttling error: the SDK would retry that, the test wants one refusal.
            kind = "AccessDeniedException"
            body = json.dumps({"__type": kind, "message": f"{op} refused (injected by the test)"}).encode()
            start_response("400 Bad Request", [("Content-Type", "application/x-amz-json-1.1"), ("Content-Length", str(len(body)))])
            return [body]
    elif method == "GET" and DENY_S3:
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        hit = sorted(DENY_S3 & set(query))
        if hit:
            note(f"s3:{hit[0]}")
            body = (
                '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
                "<Message>Access Denied (injected by the test)</Message><RequestId>test</RequestId></Error>"
            ).encode()
            start_response("403 Forbidden", [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))])
            return [body]
    return _call(self, environ, start_response)


DomainDispatcherApplication.__call__ = call

server = sys.argv[1]
sys.argv = [server] + sys.argv[2:]
runpy.run_path(server, run_name="__main__")
