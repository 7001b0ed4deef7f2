#!/usr/bin/env python3
"""Extract the part of the AWS provider schema meshkit renders, from @cdktf/provider-aws's .jsii.

Run once per provider upgrade and commit the output (the .jsii is 131 MB, the subset a few KB):
    npm pack @cdktf/provider-aws@21.22.1 && tar xzf cdktf-provider-aws-21.22.1.tgz package/.jsii
    python3 crates/mesh-infra/tools/extract_provider_schema.py package/.jsii > crates/mesh-infra/schema/aws_provider_subset.json

For every resource type listed below it records each argument with its Terraform name (taken from
the registry link in the docs, which is the real snake_case name), whether it is required, and for
nested blocks the same recursively. The test `provider_schema` rejects unknown types or arguments.
"""
import json
import re
import sys

RESOURCES = [
    "aws_cloudwatch_log_group", "aws_cloudwatch_metric_alarm", "aws_glue_catalog_database",
    "aws_glue_catalog_table", "aws_glue_catalog_table_optimizer", "aws_glue_job",
    "aws_glue_security_configuration", "aws_iam_role", "aws_iam_role_policy", "aws_kms_alias",
    "aws_kms_key", "aws_s3_bucket", "aws_s3_bucket_lifecycle_configuration", "aws_s3_bucket_logging",
    "aws_s3_bucket_ownership_controls", "aws_s3_bucket_policy", "aws_s3_bucket_public_access_block",
    "aws_s3_bucket_server_side_encryption_configuration", "aws_s3_bucket_versioning", "aws_scheduler_schedule",
    "aws_sfn_state_machine", "aws_sns_topic", "aws_sns_topic_subscription", "aws_ssm_parameter",
    "aws_s3_bucket_notification", "aws_kms_key_policy", "aws_iam_openid_connect_provider",
    "aws_iam_role_policy_attachment", "aws_glue_resource_policy",
]

LINK = re.compile(r"docs/resources/(\w+)#(\w+)")
CLASS = re.compile(r"docs/resources/(\w+) ")


def snake(name):
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def element_fqn(t):
    """The struct a property refers to, through arrays and IResolvable unions."""
    if "fqn" in t:
        return t["fqn"]
    if "collection" in t:
        return element_fqn(t["collection"]["elementtype"])
    if "union" in t:
        for option in t["union"]["types"]:
            f = element_fqn(option)
            if f and not f.startswith("cdktf."):
                return f
    return None


def struct(types, fqn, depth=0):
    out = {}
    for p in types[fqn].get("properties", []):
        docs = " ".join(str(v) for v in p.get("docs", {}).values())
        m = LINK.search(docs)
        name = m.group(2) if m else snake(p["name"])
        arg = {"required": not p.get("optional", False)}
        nested = element_fqn(p["type"])
        if nested and nested.startswith("@cdktf/provider-aws.") and depth < 6:
            arg["block"] = struct(types, nested, depth + 1)
        out[name] = arg
    return dict(sorted(out.items()))


def main(path):
    types = json.load(open(path))["types"]
    configs = {}
    for fqn, t in types.items():
        if t.get("kind") != "class" or not fqn.startswith("@cdktf/provider-aws."):
            continue
        m = CLASS.search(t.get("docs", {}).get("summary", ""))
        if m and "aws_" + m.group(1) in RESOURCES:
            configs["aws_" + m.group(1)] = fqn + "Config"
    missing = sorted(set(RESOURCES) - set(configs))
    if missing:
        sys.exit(f"resource types not in the provider: {missing}")
    version = re.search(r"hashicorp/aws/([\d.]+)/", json.dumps(types[configs["aws_glue_job"][:-6]]["docs"])).group(1)
    out = {"provider": "hashicorp/aws", "version": version,
           "resources": {r: struct(types, configs[r]) for r in sorted(configs)}}
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv[1])
