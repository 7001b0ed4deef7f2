# Copied from ../shared/tools/moto_server_patched.py (pin moto==5.2.5) so the tests are self-contained,
# plus fixes of our own: S3 GetBucketVersioning's XML root, and two AWS accounts with the
# cross-account rules data products rely on (below).
"""moto_server (pin moto==5.2.5) with two fixes for offline tests: Glue UpdateTable honours VersionId
(ConcurrentModificationException on a stale one, as AWS does), and Step Functions .sync Glue tasks run.
Usage: python moto_server_patched.py -H 127.0.0.1 -p PORT   (enable SFN execution: POST /moto-api/config
{"stepfunctions":{"execute_state_machine":true}})"""
import sys, threading
_lock = threading.Lock()
from moto.glue.responses import GlueResponse
from moto.glue.exceptions import GlueClientError

class ConcurrentModificationException(GlueClientError):
    def __init__(self, msg):
        super().__init__("ConcurrentModificationException", msg)

_orig = GlueResponse.update_table
def update_table(self):
  with _lock:
    vid = self.parameters.get("VersionId")
    if vid is not None:
        db = self.parameters.get("DatabaseName")
        name = self.parameters.get("TableInput", {}).get("Name")
        table = self.glue_backend.get_table(db, name)
        if str(table._current_version) != str(vid):
            raise ConcurrentModificationException(
                f"Update table failed due to concurrent modifications (expected VersionId {vid}, current {table._current_version})")
    return _orig(self)
GlueResponse.update_table = update_table

# moto 5.2.5 bug: .sync tasks for services without waitForTaskToken crash with
# "'NoneType' object has no attribute 'interrupt_all'" -> guard it.
import inspect, textwrap
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_callback as _cb
_src = textwrap.dedent(inspect.getsource(_cb.StateTaskServiceCallback._eval_integration_pattern))
_src = _src.replace("callback_endpoint.interrupt_all()", "callback_endpoint is not None and callback_endpoint.interrupt_all()")
_ns = {}
exec(compile(_src, _cb.__file__, "exec"), _cb.__dict__, _ns)
_cb.StateTaskServiceCallback._eval_integration_pattern = _ns["_eval_integration_pattern"]

# moto 5.2.5 bug: .sync output contains datetime (GetJobRun StartedOn...) -> DescribeExecution 500
import json as _json, types as _types
import moto.stepfunctions.responses as _sfr
_j = _types.SimpleNamespace(**{k: getattr(_json, k) for k in dir(_json) if not k.startswith("__")})
_j.dumps = lambda o, **kw: _json.dumps(o, **{"default": str, **kw})
_sfr.json = _j

# moto 5.2.5 answers S3 GetBucketVersioning with the root `GetBucketVersioningResponse`; S3 uses
# `VersioningConfiguration`, and strict clients (the Rust SDK, `mesh bootstrap`) reject the other.
from moto.s3.responses import S3Response as _S3Response
from xml.sax.saxutils import escape as _xml_escape

def _get_bucket_versioning(self):
    status = self.backend.get_bucket_versioning(self.bucket_name)
    inner = f"<Status>{_xml_escape(status)}</Status>" if status else ""
    return 200, {}, ('<?xml version="1.0" encoding="UTF-8"?>\n'
                     f'<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">{inner}</VersioningConfiguration>')
_S3Response.get_bucket_versioning = _get_bucket_versioning

# --- Two AWS accounts, as data products need them (ours) ---------------------------------------
# moto keeps one backend per account but (1) picks the account only from access keys it issued,
# (2) ignores Glue's `CatalogId`, serving every request from the caller's own catalog, and (3)
# lets any account read any bucket. AWS instead serves another account's catalog when the
# request names it and that catalog's resource policy grants the caller, and another account's
# objects when the bucket policy grants them. So, for the tests of data products:
# (1) an access key `AKIAMESH<12 digits>` acts as that account (any other key: moto's default);
# (2) a Glue request with another account's `CatalogId` goes to that account's catalog, if its
#     resource policy allows the action on the catalog, database and table ARNs, else
#     AccessDeniedException;
# (3) a request on another account's bucket needs its bucket policy to allow the action.
# Policies are evaluated as AWS does for these statements: an explicit Deny wins, else an Allow
# whose principal names the caller's account (root ARN or id, or "*"), action, resource and
# `StringEquals`/`StringLike`/`Bool` conditions all match (other operators never match). KMS is not modelled (moto's objects here are
# not KMS-encrypted); `mesh check iam` covers the key grants.
import re as _re, json as _pjson, fnmatch as _fn
import moto.iam.models as _iam_models

_orig_account_from = _iam_models.get_account_id_from
def _account_from(access_key):
    m = _re.fullmatch(r"AKIAMESH(\d{12})", access_key or "")
    return m.group(1) if m else _orig_account_from(access_key)
_iam_models.get_account_id_from = _account_from

def _as_list(v):
    return v if isinstance(v, list) else [v]

def _like(pattern, value):
    return _fn.fnmatchcase(value.lower(), pattern.lower()) if "*" in pattern or "?" in pattern else value.lower() == pattern.lower()

def _principal_ok(stmt, account):
    p = stmt.get("Principal")
    if p == "*":
        return True
    aws = _as_list((p or {}).get("AWS", []))
    return any(a in ("*", account, f"arn:aws:iam::{account}:root") for a in aws)

def _conditions_ok(stmt, context):
    for op, kv in (stmt.get("Condition") or {}).items():
        for key, wanted in kv.items():
            have = context.get(key)
            if have is None:
                return False
            if op in ("StringEquals", "Bool") and have.lower() not in [str(w).lower() for w in _as_list(wanted)]:
                return False
            if op == "StringLike" and not any(_fn.fnmatchcase(have, w) for w in _as_list(wanted)):
                return False
            if op not in ("StringEquals", "StringLike", "Bool"):
                return False
    return True

def _decide(policy_json, account, action, resources, context=None):
    """What a resource policy says to `account` doing `action` on every one of `resources`:
    "deny" (an explicit Deny matches one), "allow" (an Allow matches each), else None."""
    if not policy_json:
        return None
    stmts = _as_list(_pjson.loads(policy_json).get("Statement", []))
    def matching(effect, resource):
        return [st for st in stmts if st.get("Effect") == effect and _principal_ok(st, account)
                and any(_like(a, action) for a in _as_list(st.get("Action", [])))
                and any(_like(r, resource) for r in _as_list(st.get("Resource", [])))
                and _conditions_ok(st, context or {})]
    if any(matching("Deny", r) for r in resources):
        return "deny"
    return "allow" if all(matching("Allow", r) for r in resources) else None

def _allowed(policy_json, account, action, resources, context=None):
    return _decide(policy_json, account, action, resources, context) == "allow"

# (2) Glue: another account's catalog through its resource policy.
from moto.glue.models import glue_backends as _glue_backends

def _glue_backend(self):
    return _glue_backends[getattr(self, "_mesh_catalog_owner", None) or self.current_account][self.region]
GlueResponse.glue_backend = property(_glue_backend)

def _cross_account(op, action):
    orig = getattr(GlueResponse, op)
    def handler(self):
        owner = self.parameters.get("CatalogId")
        if owner and owner != self.current_account:
            db = self.parameters.get("DatabaseName") or self.parameters.get("Name") if op.endswith("database") else self.parameters.get("DatabaseName")
            table = self.parameters.get("Name") or (self.parameters.get("TableInput") or {}).get("Name")
            base = f"arn:aws:glue:{self.region}:{owner}:"
            resources = [base + "catalog"]
            if db:
                resources.append(base + f"database/{db}")
            if op.endswith("table") and db and table:
                resources.append(base + f"table/{db}/{table}")
            if op == "get_tables" and db:
                resources.append(base + f"table/{db}/*")
            backend = _glue_backends[owner][self.region]
            policy = backend.resource_policies.get(backend.default_catalog_arn, {}).get("PolicyInJson")
            if not _allowed(policy, self.current_account, f"glue:{action}", resources):
                raise GlueClientError("AccessDeniedException",
                    f"User: arn:aws:iam::{self.current_account}:root is not authorized to perform: glue:{action} on resource: {resources[-1]} because no resource-based policy allows the glue:{action} action")
            self._mesh_catalog_owner = owner
        return orig(self)
    setattr(GlueResponse, op, handler)

for _op, _action in [("get_table", "GetTable"), ("get_tables", "GetTables"), ("get_database", "GetDatabase"),
                     ("create_table", "CreateTable"), ("update_table", "UpdateTable"),
                     ("delete_table", "DeleteTable"), ("create_database", "CreateDatabase")]:
    _cross_account(_op, _action)

# (3) S3: a bucket policy's explicit Deny holds for every caller; another account's bucket also
# needs its Allow. moto's own bucket-policy check ignores conditions (so `DenyInsecureTransport`
# would refuse everything); it is replaced by this one, which takes the test server for HTTPS.
from moto.s3.models import s3_backends as _s3_backends, FakeBucket as _FakeBucket
from moto.s3.exceptions import AccessDeniedByLock as _S3AccessDenied
from moto.iam.access_control import PermissionResult as _PermissionResult
_FakeBucket.get_permission = lambda self, action, resource: _PermissionResult.NEUTRAL
_orig_s3_auth = _S3Response._authenticate_and_authorize_s3_action
def _s3_auth(self, bucket_name=None, key_name=None):
    _orig_s3_auth(self, bucket_name=bucket_name, key_name=key_name)
    owner = _s3_backends.bucket_accounts.get(bucket_name) if bucket_name else None
    if not owner:
        return
    bucket = _s3_backends[owner[1]][owner[0]].buckets.get(bucket_name)
    if bucket is None:
        return
    action = {"HeadBucket": "ListBucket"}.get(self.data.get("Action"), self.data.get("Action"))
    resource = f"arn:aws:s3:::{bucket_name}" + (f"/{key_name}" if key_name else "")
    prefix = (self.querystring.get("prefix") or [""])[0]
    policy = bucket.policy.decode() if bucket.policy else None
    verdict = _decide(policy, self.current_account, f"s3:{action}", [resource],
                      {"s3:prefix": prefix, "aws:SecureTransport": "true"})
    if verdict == "deny" or (owner[1] != self.current_account and verdict != "allow"):
        raise _S3AccessDenied()
_S3Response._authenticate_and_authorize_s3_action = _s3_auth

from moto.server import main
sys.exit(main(sys.argv[1:]))
