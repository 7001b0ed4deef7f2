"""Validates data contracts against the Open Data Contract Standard's own JSON schema.

The schema is the one the standard publishes, as shipped in the PyPI package
`open-data-contract-standard` (tests/python/requirements.txt pins it); the validator is
`jsonschema`, with the schema's declared draft (2019-09). Nothing here is meshkit's.

Usage: odcs_validate.py CONTRACT.yaml... ; prints `PATH: ok` or each error, exits 1 on any.
"""

import importlib.metadata
import importlib.resources
import json
import sys

import jsonschema
import yaml

schema = json.loads(
    importlib.resources.files("open_data_contract_standard").joinpath("schema.json").read_text()
)
validator_class = jsonschema.validators.validator_for(schema)
validator_class.check_schema(schema)
validator = validator_class(schema)
print(
    "schema: open-data-contract-standard",
    importlib.metadata.version("open-data-contract-standard"),
    "apiVersion",
    schema["properties"]["apiVersion"]["enum"],
    validator_class.__name__,
)

failed = False
for path in sys.argv[1:]:
    with open(path, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    if errors:
        failed = True
        for e in errors:
            print(f"{path}: {e.json_path}: {e.message}")
    else:
        print(f"{path}: ok")
sys.exit(1 if failed else 0)
