# Copied from ../shared/tools/moto_server_patched.py (pin moto==5.2.5) so the tests are self-contained,
# plus one fix of our own (S3 GetBucketVersioning's XML root, below).
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

from moto.server import main
sys.exit(main(sys.argv[1:]))
