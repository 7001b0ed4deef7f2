"""The patched moto server (tests/tools/moto_server_patched.py) with two faults a test injects,
because plain moto's Glue job runs always succeed and its Glue API never throttles:

- MESH_MOTO_FAILING_JOBS=a,b     every run of these Glue jobs ends FAILED (as a run whose check
                                 failed does on AWS: GetJobRun says FAILED with an ErrorMessage);
- MESH_MOTO_THROTTLED_JOBS=a=2   the first 2 StartJobRun calls for job `a` answer
                                 ThrottlingException (no run is created), later ones start it.

Usage: moto_faults.py PATCHED_SERVER -H 127.0.0.1 -p PORT
"""
import os
import runpy
import sys
import threading

from moto.glue.exceptions import GlueClientError
from moto.glue.models import FakeJobRun
from moto.glue.responses import GlueResponse

FAILING = {j for j in os.environ.get("MESH_MOTO_FAILING_JOBS", "").split(",") if j}
THROTTLED: dict[str, int] = {}
for item in filter(None, os.environ.get("MESH_MOTO_THROTTLED_JOBS", "").split(",")):
    name, _, count = item.partition("=")
    THROTTLED[name] = int(count)
_lock = threading.Lock()


class ThrottlingException(GlueClientError):
    def __init__(self, msg):
        super().__init__("ThrottlingException", msg)


_start_job_run = GlueResponse.start_job_run


def start_job_run(self):
    name = self._get_param("JobName")
    with _lock:
        left = THROTTLED.get(name, 0)
        if left > 0:
            THROTTLED[name] = left - 1
            raise ThrottlingException(f"Rate exceeded (injected by the test, {left - 1} more to come)")
    return _start_job_run(self)


GlueResponse.start_job_run = start_job_run

_as_dict = FakeJobRun.as_dict


def as_dict(self):
    d = _as_dict(self)
    if self.job_name in FAILING and d.get("JobRunState") == "SUCCEEDED":
        d["JobRunState"] = "FAILED"
        d["ErrorMessage"] = "JobFailed: check `unique` failed: 2 duplicate keys (injected by the test)"
    return d


FakeJobRun.as_dict = as_dict

server = sys.argv[1]
sys.argv = [server] + sys.argv[2:]
runpy.run_path(server, run_name="__main__")
