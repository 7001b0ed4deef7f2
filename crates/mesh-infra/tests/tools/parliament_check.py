"""Runs parliament (Duo Labs' IAM linter) on policy files. Prints every finding and a summary
line `N policies, M findings`; exit 1 on any finding. First proves on a broken policy that
parliament reports problems at all.

Usage: parliament_check.py POLICY.json...
"""
import sys

from parliament import analyze_policy_string

BROKEN = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObjects", "Resource": "arn:aws:s3:::b"}]}'
if not analyze_policy_string(BROKEN).findings:
    sys.exit("self-test: parliament reported nothing on an unknown action")

count = 0
for path in sys.argv[1:]:
    for f in analyze_policy_string(open(path).read()).findings:
        count += 1
        print(f"{path}: {f.issue} {f.detail} {f.location}")
print(f"{len(sys.argv) - 1} policies, {count} findings")
sys.exit(1 if count else 0)
