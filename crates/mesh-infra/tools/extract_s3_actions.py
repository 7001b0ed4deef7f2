#!/usr/bin/env python3
"""Extract every S3 action that applies to objects or to buckets from parliament's IAM
definition (AWS's service authorization reference), for the probes of `mesh check iam`.

    python3 crates/mesh-infra/tools/extract_s3_actions.py > crates/mesh-infra/schema/s3_actions.json

Re-run when parliament is upgraded (tests/python/requirements.txt) and commit the output.
"""
import json
import os
import sys

import parliament

with open(os.path.join(os.path.dirname(parliament.__file__), "iam_definition.json")) as f:
    services = json.load(f)
s3 = next(s for s in services if s["prefix"] == "s3")


def actions(kind):
    return sorted(
        "s3:" + p["privilege"]
        for p in s3["privileges"]
        if any(r["resource_type"].rstrip("*") == kind for r in p["resource_types"])
    )


out = {"source": f"parliament {parliament.__version__} iam_definition.json", "object": actions("object"), "bucket": actions("bucket")}
json.dump(out, sys.stdout, indent=1)
sys.stdout.write("\n")
