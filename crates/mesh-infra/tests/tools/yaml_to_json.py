"""Reads each YAML file named on the command line with PyYAML (an independent parser) and
prints {path: document} as JSON. YAML 1.1 reads the workflow key `on` as the boolean true;
it is put back as "on", as GitHub reads it."""
import json
import sys

import yaml


def fix(node):
    if isinstance(node, dict):
        return {("on" if k is True else k): fix(v) for k, v in node.items()}
    if isinstance(node, list):
        return [fix(v) for v in node]
    return node


out = {}
for path in sys.argv[1:]:
    with open(path, encoding="utf-8") as f:
        out[path] = fix(yaml.safe_load(f))
json.dump(out, sys.stdout)
