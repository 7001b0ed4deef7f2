"""meshkit Glue runner: executes one meshkit job spec on AWS Glue 5 (Spark 3.5, Python 3.11).

Every Glue job of the domain starts this script with `--job-spec s3://…/jobs/{slug}/{job}.json`
(rendered by `mesh render`, uploaded by `mesh deploy artifacts`). It does what `mesh run` does
locally on DataFusion, in the same order:

1. read the spec and the job's SQL; bind `${param}` values (spec defaults < run arguments);
2. configure the Iceberg Glue catalog (`glue_catalog`) and shape the output table (partition
   spec, sort order, properties) the first time, because Terraform creates it unpartitioned;
3. register every input as a temporary view and point the SQL's `database.table` names at it;
4. run the SQL, then every check on the result; a failing `error` check stops before any write;
5. write with Spark SQL: INSERT INTO, INSERT OVERWRITE (static or dynamic partitions) or
   MERGE INTO with null-safe keys, the duplicate-key rule and the delete condition;
6. log one JSON object per line.

The functions above the `Spark` line are pure (text in, text out) so tests can check the SQL
this script generates without a cluster.
"""

from __future__ import annotations

import json
import re
import sys
import time
import uuid

SPEC_VERSION = 1
# Names of the runner's own columns and views; job SQL must not use the `__mesh_` prefix.
ROW_NUMBER_COLUMN = "__mesh_rn"
DELETE_COLUMN = "__mesh_delete"
OUTPUT_VIEW = "output"
SOURCE_VIEW = "__mesh_source"
# Arguments Glue passes to every script; they are not run parameters.
GLUE_RESERVED = {"JOB_NAME", "JOB_ID", "JOB_RUN_ID", "SECURITY_CONFIGURATION", "TempDir", "ENV"}


class JobFailed(Exception):
    """A job error with a message that says what is wrong and how to fix it."""


# --------------------------------------------------------------------------- pure functions


def parse_args(argv: list[str]) -> tuple[str, dict[str, str]]:
    """`--job-spec URI` and every other `--name value` pair (run parameters such as `--run_date`)."""
    args: dict[str, str] = {}
    i = 0
    while i < len(argv):
        a = argv[i]
        if a.startswith("--"):
            key, eq, value = a[2:].partition("=")
            if not eq:
                if i + 1 < len(argv) and not argv[i + 1].startswith("--"):
                    value = argv[i + 1]
                    i += 1
                else:
                    value = "true"
            args[key] = value
        i += 1
    spec = args.pop("job-spec", None)
    if not spec:
        raise JobFailed("missing --job-spec; the Glue job's default arguments must name the job spec (run `mesh render`)")
    params = {k: v for k, v in args.items() if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", k) and k not in GLUE_RESERVED}
    return spec, params


def load_spec(text: str) -> dict:
    spec = json.loads(text)
    version = spec.get("spec_version")
    if version != SPEC_VERSION:
        raise JobFailed(
            f"job spec version {version!r} is not supported by this runner (version {SPEC_VERSION}); "
            "deploy the runner and the specs together with `mesh deploy artifacts`"
        )
    return spec


def run_params(spec: dict, overrides: dict[str, str], run_id: str) -> dict[str, str]:
    """Parameters as the local runtime binds them: job defaults, run id and env, then run values."""
    params = dict(spec.get("params", {}))
    params["run_id"] = run_id
    params["env"] = spec["env"]
    params.update(overrides)
    return params


_INT = re.compile(r"[+-]?[0-9]+")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_TIMESTAMP = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2})[T ]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.[0-9]{1,9})?)?(?:Z|[+-]([0-9]{2}):([0-9]{2}))?")


def _is_date(v: str) -> bool:
    import datetime

    try:
        return bool(_DATE.fullmatch(v)) and datetime.date.fromisoformat(v).year >= 1
    except ValueError:
        return False


def check_param(name: str, value: str, ty: str) -> None:
    """A value must parse as its declared type (meshkit's `ParamType::check`, same rules)."""
    if "${" in value or "\0" in value:
        raise JobFailed(f"parameter `{name}`: a value may not contain `${{` or a NUL character")
    ok = True
    if ty == "int":
        ok = bool(_INT.fullmatch(value)) and -(2**63) <= int(value) < 2**63
    elif ty == "date":
        ok = _is_date(value)
    elif ty == "timestamp":
        m = _TIMESTAMP.fullmatch(value)
        ok = bool(m) and _is_date(m.group(1)) and int(m.group(2)) <= 23 and int(m.group(3)) <= 59 and int(m.group(4) or 0) <= 59
        ok = ok and (m.group(5) is None or (int(m.group(5)) <= 18 and int(m.group(6)) <= 59))
    elif ty != "string":
        raise JobFailed(f"parameter `{name}` has the unknown type `{ty}`; rebuild the job spec with `mesh build`")
    if not ok:
        shown = value if len(value) <= 80 else value[:80] + f"… ({len(value)} chars)"
        raise JobFailed(f"parameter `{name}` = `{shown}` is not a valid {ty}")


def _spark_escape(value: str) -> str:
    # Spark string literals take backslash escapes (spark.sql.parser.escapedStringLiterals is
    # false, the default): escaping `\`, `'` and `"` keeps the value inside either quote style.
    return value.replace("\\", "\\\\").replace("'", "\\'").replace('"', '\\"')


def _typed_literal(value: str, ty: str) -> str:
    if ty == "int":
        n = int(value)
        return f"({n})" if n < 0 else str(n)  # `x-${n}` must not become the comment `x--5`
    quoted = "'" + _spark_escape(value) + "'"
    return {"date": f"DATE {quoted}", "timestamp": f"TIMESTAMP {quoted}"}.get(ty, quoted)


_IDENT_CHAR = re.compile(r"[A-Za-z0-9_]")


def bind_params(sql: str, params: dict[str, str], types: dict[str, str] | None = None) -> str:
    """Binds `${name}` as a value, never as SQL text (meshkit's `params::bind`, for Spark's lexer).

    Outside quotes a placeholder becomes a literal of its type (`'text'`, `42`, `DATE '…'`,
    `TIMESTAMP '…'`); inside a '…' or "…" string the escaped value; comments keep it as
    written; inside a name, a backquoted identifier or an R'…'/X'…' literal it is an error.
    """
    types = types or {}

    def value(name: str) -> tuple[str, str]:
        if not re.fullmatch(r"[A-Za-z0-9_]+", name):
            raise JobFailed(f"`${{{name[:80]}}}` is not a parameter name (letters, digits and _)")
        if name not in params:
            raise JobFailed(f"parameter `${{{name}}}` has no value; pass --{name} VALUE to the Glue job or add it to the job's params")
        ty = types.get(name, "string")
        check_param(name, params[name], ty)
        return params[name], ty

    def placeholders(text: str, render) -> str:
        def sub(m):
            return render(*value(m.group(1)))

        if "${" in text and not re.search(r"\$\{[^}]*\}", text):
            raise JobFailed("the SQL has an unclosed `${`")
        return re.sub(r"\$\{([^}]*)\}", sub, text)

    out: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        if sql.startswith("--", i):
            j = sql.find("\n", i)
            j = n if j < 0 else j
        elif sql.startswith("/*", i):
            depth, j = 0, i  # Spark's bracketed comments nest
            while j < n:
                if sql.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif sql.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                    if depth == 0:
                        break
                else:
                    j += 1
        elif sql[i] in "'\"`":
            q = sql[i]
            word = re.search(r"[A-Za-z0-9_]*$", sql[:i]).group(0)
            raw_or_hex = word.lower() in ("r", "x")
            j = i + 1
            while j < n:
                if sql[j] == "\\" and q != "`" and not raw_or_hex:
                    j += 2
                elif sql[j] == q:
                    if q == "`" and sql.startswith("``", j):
                        j += 2
                        continue
                    j += 1
                    break
                else:
                    j += 1
            body = sql[i:j]
            if "${" in body:
                if q == "`" or raw_or_hex:
                    raise JobFailed(f"a parameter stands inside {'an identifier' if q == '`' else 'a raw or hex literal'}: {body[:80]}; parameters are values")
                body = placeholders(body, lambda v, ty: _spark_escape(v))
            out.append(body)
            i = j
            continue
        elif sql.startswith("${", i):
            j = sql.find("}", i)
            if j < 0:
                raise JobFailed("the SQL has an unclosed `${`")
            j += 1
            before, after = sql[i - 1 : i], sql[j : j + 1]
            if _IDENT_CHAR.fullmatch(before or " ") or _IDENT_CHAR.fullmatch(after or " "):
                raise JobFailed(f"parameter `{sql[i:j]}` stands inside a name; parameters are values, not identifiers")
            out.append(placeholders(sql[i:j], _typed_literal))
            i = j
            continue
        else:
            j = i + 1
        out.append(sql[i:j])
        i = j
    return "".join(out)


def check_query(spark, sql: str) -> None:
    """The bound SQL is exactly one query, by Spark's own parser, before anything runs.

    `parsePlan` accepts exactly one whole statement; `parseQuery` accepts only the grammar's
    query rule (SELECT, WITH … SELECT, VALUES, FROM … SELECT) as a prefix. Both together: one
    statement that is a query. INSERT, COPY-like commands, DDL, SET and a second statement fail.
    """
    parser = spark._jsparkSession.sessionState().sqlParser()

    def message(e: Exception) -> str:
        j = getattr(e, "java_exception", None)
        text = j.getMessage() if j is not None else str(e)
        return (text or type(e).__name__).strip().splitlines()[0][:300]

    for parse, what in ((parser.parsePlan, "one statement"), (parser.parseQuery, "a query (SELECT or WITH … SELECT)")):
        try:
            parse(sql)
        except Exception as e:  # noqa: BLE001 - py4j raises the JVM's ParseException as is
            raise JobFailed(f"the job's SQL is not {what}: {message(e)}; a job's SQL is exactly one query") from None


def quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def view_name(qualified: str) -> str:
    """The temporary view of an input: `f01_raw.sales_events` -> `__mesh_in_f01_raw__sales_events`."""
    return "__mesh_in_" + qualified.replace(".", "__")


_TOKEN = re.compile(
    r"""
    (?P<comment>--[^\n]*|/\*.*?\*/)
  | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<name>(?:`(?:[^`]|``)+`|[A-Za-z_][A-Za-z0-9_]*)(?:\s*\.\s*(?:`(?:[^`]|``)+`|[A-Za-z_][A-Za-z0-9_]*))*)
  | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)


def _parts(name: str) -> list[str]:
    parts = re.findall(r"`((?:[^`]|``)+)`|([A-Za-z_][A-Za-z0-9_]*)", name)
    return [(q.replace("``", "`") if q else p).lower() for q, p in parts]


def bind_inputs(sql: str, inputs: dict[str, str]) -> str:
    """Points `database.table` names (any case, backticks allowed) at the inputs' views.

    Spark cannot register a temporary view under a database name, and the job SQL names
    tables as on Glue, so the qualified names are rewritten; strings and comments are left alone.
    """
    wanted = {k.lower(): v for k, v in inputs.items()}
    out = []
    for m in _TOKEN.finditer(sql):
        text = m.group(0)
        if m.lastgroup == "name":
            parts = _parts(text)
            if len(parts) == 2 and ".".join(parts) in wanted:
                text = wanted[".".join(parts)]
        out.append(text)
    return "".join(out)


def target_name(spec: dict) -> str:
    o = spec["output"]
    return ".".join(quote(p) for p in (spec["iceberg"]["catalog"], o["database"], o["table"]))


def control_columns(spec: dict, result_columns: list[str]) -> list[str]:
    """Result columns a merge needs beyond the table's own: the ordering column and columns
    named in the delete condition (the local runtime keeps the same ones)."""
    w = spec["write"]
    if w["mode"] != "merge":
        return []
    table = {c["name"] for c in spec["output"]["columns"]}
    order_by = w["on_duplicate"].get("order_by")
    delete_when = w.get("delete_when") or ""
    return [c for c in result_columns if c not in table and (c == order_by or c in delete_when)]


def closest(wanted: str, known: list[str]) -> str | None:
    """`did you mean …?` for the known name closest to `wanted` (as meshkit's diagnostics)."""
    import difflib

    match = difflib.get_close_matches(wanted, known, n=1, cutoff=0.6)
    return f"did you mean `{match[0]}`?" if match else None


def shape_sql(spec: dict, result_columns: list[str], relation: str) -> str:
    """Projects the SQL result onto the output table's columns in table order, each cast to its
    declared type, plus merge control columns. The result must name exactly the declared
    columns: a missing one (nullable or not) or an extra one is an error naming the closest
    name, as in the local runtime (a misspelt alias must not leave a column NULL)."""
    have = set(result_columns)
    declared = [c["name"] for c in spec["output"]["columns"]]
    controls = control_columns(spec, result_columns)
    job, out, file = spec.get("job", "?"), spec["output"]["reference"], spec["sql"]["file"]
    for r in result_columns:
        if r not in declared and r not in controls:
            hint = closest(r, declared)
            raise JobFailed(
                f"job `{job}`: the SQL result's column `{r}` is not a column of {out} (declared: {', '.join(declared)}); "
                f"{hint + ' ' if hint else ''}rename or remove it in {file}"
            )
    select = []
    for c in spec["output"]["columns"]:
        if c["name"] not in have:
            hint = closest(c["name"], [r for r in result_columns if r not in declared])
            raise JobFailed(
                f"job `{job}`: the SQL result has no column `{c['name']}`, declared by {out}; "
                f"{hint + ' ' if hint else ''}select it in {file} (`… AS {c['name']}`)"
            )
        select.append(f"CAST({quote(c['name'])} AS {c['spark_type']}) AS {quote(c['name'])}")
    select += [quote(c) for c in controls]
    return "SELECT " + ", ".join(select) + f" FROM {relation}"


def check_sql(check: dict, relation: str = OUTPUT_VIEW) -> str:
    """The counting query of a check, in Spark SQL (the local runtime runs the same logic)."""
    kind = check["type"]
    if kind == "not_null":
        cond = " OR ".join(f"{quote(c)} IS NULL" for c in check["columns"])
        return f"SELECT COUNT(*) FROM {relation} WHERE {cond}"
    if kind == "unique":
        cols = ", ".join(quote(c) for c in check["columns"])
        return f"SELECT COALESCE(SUM(n), 0) FROM (SELECT COUNT(*) AS n FROM {relation} GROUP BY {cols} HAVING COUNT(*) > 1) d"
    if kind == "accepted_values":
        c = quote(check["column"])
        values = ", ".join(literal(v) for v in check["values"])
        return f"SELECT COUNT(*) FROM {relation} WHERE {c} IS NOT NULL AND CAST({c} AS STRING) NOT IN ({values})"
    if kind == "range":
        c = quote(check["column"])
        cond = []
        if check.get("min") is not None:
            cond.append(f"CAST({c} AS DOUBLE) < {float(check['min'])!r}")
        if check.get("max") is not None:
            cond.append(f"CAST({c} AS DOUBLE) > {float(check['max'])!r}")
        return f"SELECT COUNT(*) FROM {relation} WHERE " + " OR ".join(cond)
    if kind == "row_count_min":
        return f"SELECT COUNT(*) FROM {relation}"
    if kind == "sql":
        return f"SELECT COUNT(*) FROM ({check['sql'].strip().rstrip(';')}) failing"
    raise JobFailed(f"check `{check['name']}` has an unknown type `{kind}`; this runner is older than the spec")


def check_outcome(check: dict, count: int) -> dict:
    if check["type"] == "row_count_min":
        need = int(check["min"])
        passed, failing, detail = count >= need, max(need - count, 0), f"{count} rows, at least {need} required"
    else:
        passed, failing = count == 0, count
        detail = "no failing rows" if count == 0 else f"{count} failing rows"
    return {"name": check["name"], "check": check["type"], "severity": check["severity"], "passed": passed, "failing_rows": failing, "detail": detail}


_INTEGERS = {"tinyint", "smallint", "int", "bigint"}
_DECIMAL = re.compile(r"decimal\((\d+),\s*(\d+)\)")


def writable(have: str, want: str) -> bool:
    """Whether a result column of Spark type `have` may be written to a table column of type
    `want` without changing values: the local runtime's rule (mesh-iceberg `conform`). Integer
    narrowing and integers into decimals are allowed and checked for overflow when written.
    Integers go into a float only when it holds every value exactly (24-bit significand for
    float, 53-bit for double): bigint into float or double, and int into float, are refused."""
    have, want = have.lower().replace(" ", ""), want.lower().replace(" ", "")
    if have == want:
        return True
    dec_have, dec_want = _DECIMAL.fullmatch(have), _DECIMAL.fullmatch(want)
    if have in _INTEGERS:
        if want == "float":
            return have in ("tinyint", "smallint")
        if want == "double":
            return have != "bigint"
        return want in _INTEGERS or dec_want is not None
    if have == "float":
        return want == "double"
    if dec_have and dec_want:
        return dec_have.group(2) == dec_want.group(2) and int(dec_have.group(1)) <= int(dec_want.group(1))
    return False


def duplicate_keys_sql(keys: list[str], relation: str) -> str:
    """How many merge keys of the source occur more than once, and in how many rows (GROUP BY
    groups NULLs together, like the null-safe match). Counts only: see `duplicate_key_error`."""
    cols = ", ".join(quote(k) for k in keys)
    return (
        f"SELECT COUNT(*) AS duplicated_keys, COALESCE(SUM(n), 0) AS rows FROM "
        f"(SELECT COUNT(*) AS n FROM {relation} GROUP BY {cols} HAVING COUNT(*) > 1) duplicated"
    )


def duplicate_key_error(spec: dict, keys: list[str], duplicated_keys: int, rows: int) -> str:
    """The error of a merge source with duplicated keys. It names the key columns and counts,
    never the key values: the runner's errors go to CloudWatch, the run record and SNS alerts,
    which more people read than may read the table, and the manifest does not say which
    columns are sensitive, so no key value of any column is written there. The local engine
    (`mesh run`, on data already on the user's machine) shows the first duplicated key."""
    cols = ", ".join(keys)
    return (
        f"job `{spec['job']}`: the merge source has several rows with key ({cols}): {duplicated_keys} key value(s) occur "
        f"more than once, in {rows} rows (values not logged); list them by grouping the result of {spec['sql']['file']} "
        f"by {cols} with HAVING COUNT(*) > 1, then deduplicate the source or set on_duplicate = \"keep_latest\" with an order_by column"
    )


def merge_source_sql(write: dict, relation: str) -> str:
    """The merge source after the duplicate rule, with the delete flag computed on source rows.

    keep_latest keeps the row with the greatest ordering value (NULL is the smallest, as in the
    Rust engine). The delete flag is COALESCEd so a NULL condition means "not a delete" on both
    branches of the merge (the Rust engine treats NULL as false too).
    """
    keys = ", ".join(quote(k) for k in write["keys"])
    source = relation
    if write["on_duplicate"]["rule"] == "keep_latest":
        order = quote(write["on_duplicate"]["order_by"])
        source = (
            f"(SELECT * FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY {keys} ORDER BY {order} DESC NULLS LAST) AS {ROW_NUMBER_COLUMN} "
            f"FROM {relation}) ranked WHERE {ROW_NUMBER_COLUMN} = 1)"
        )
    delete = write.get("delete_when")
    flag = f"COALESCE(({delete}), false)" if delete else "false"
    return f"SELECT *, {flag} AS {DELETE_COLUMN} FROM {source} deduplicated"


def write_statements(spec: dict, relation: str = SOURCE_VIEW) -> list[str]:
    """The Spark SQL statements that write `relation` (already shaped) to the output table."""
    target = target_name(spec)
    cols = ", ".join(quote(c["name"]) for c in spec["output"]["columns"])
    w = spec["write"]
    mode = w["mode"]
    if mode == "append":
        return [f"INSERT INTO {target} SELECT {cols} FROM {relation}"]
    if mode == "overwrite":
        # Static mode without a PARTITION clause replaces every partition: the whole table.
        return [
            "SET spark.sql.sources.partitionOverwriteMode=static",
            f"INSERT OVERWRITE {target} SELECT {cols} FROM {relation}",
        ]
    if mode == "overwrite_partitions":
        return [
            "SET spark.sql.sources.partitionOverwriteMode=dynamic",
            f"INSERT OVERWRITE {target} SELECT {cols} FROM {relation}",
        ]
    if mode == "merge":
        eq = "<=>" if w.get("null_safe", True) else "="
        on = " AND ".join(f"t.{quote(k)} {eq} s.{quote(k)}" for k in w["keys"])
        lines = [
            f"MERGE INTO {target} t",
            f"USING ({merge_source_sql(w, relation)}) s",
            f"ON {on}",
        ]
        if w.get("delete_when"):
            lines.append(f"WHEN MATCHED AND s.{DELETE_COLUMN} THEN DELETE")
        lines.append("WHEN MATCHED THEN UPDATE SET *")
        if w.get("delete_when"):
            lines.append(f"WHEN NOT MATCHED AND NOT s.{DELETE_COLUMN} THEN INSERT *")
        else:
            lines.append("WHEN NOT MATCHED THEN INSERT *")
        return ["\n".join(lines)]
    raise JobFailed(f"write mode `{mode}` is unknown to this runner; deploy the runner with the specs")


def _norm(s: str) -> str:
    return re.sub(r"\s+", "", s).lower()


def promotes(have: str, want: str) -> bool:
    """Iceberg's in-place type promotions (format v2): int→bigint, float→double,
    decimal(p,s)→decimal(p2,s) with p2 ≥ p (mesh_core::plan::promotes)."""
    have, want = have.lower().replace(" ", ""), want.lower().replace(" ", "")
    if have == want or (have, want) in (("int", "bigint"), ("float", "double")):
        return True
    dh, dw = _DECIMAL.fullmatch(have), _DECIMAL.fullmatch(want)
    return bool(dh and dw and dh.group(2) == dw.group(2) and int(dw.group(1)) >= int(dh.group(1)))


def schema_evolution(spec: dict, columns: list[dict], identifier: list[str] | None, holds_data: bool) -> dict:
    """How the runner brings the table's schema to the spec's columns, as the local runtime does
    (mesh_core::evolve, with mesh_core::plan's classification): `columns` is the table's schema
    (`name`, Spark `type`, `nullable`), `identifier` its identifier fields.

    Returns `renames`, `drops`, `alters`, `adds`, `moves` (DDL, in that order), `require` (columns to make
    NOT NULL: Spark's DDL cannot, so the caller uses Iceberg's API; only on a table with no rows),
    `identifier` (the identifier fields to set, or None) and `refused` (why the write must not
    happen: a type that is not a promotion, NOT NULL on rows already written, other identifier
    fields). Columns not declared are dropped (metadata only): on Glue the deploy's plan is where
    a dropped column is approved, the runner runs what was deployed."""
    target = target_name(spec)
    ref = spec["output"]["reference"]
    by_name = {c["name"].lower(): c for c in columns}
    renames, drops, alters, adds, require, refused = [], [], [], [], [], []
    continued = set()
    for c in spec["output"]["columns"]:
        have = by_name.get(c["name"].lower())
        old = c.get("renamed_from")
        if have is None and old and old.lower() in by_name:
            have = by_name[old.lower()]
            renames.append(f"ALTER TABLE {target} RENAME COLUMN {quote(have['name'])} TO {quote(c['name'])}")
        if have is None:
            if not c["nullable"] and holds_data:
                refused.append(f"NOT NULL column {c['name']} ({c['spark_type']}) added: the rows already written have no value for it")
                continue
            adds.append(c)
            if not c["nullable"]:
                require.append(c["name"])
            continue
        continued.add(have["name"].lower())
        if _norm(have["type"]) != _norm(c["spark_type"]):
            if promotes(have["type"], c["spark_type"]):
                alters.append(f"ALTER TABLE {target} ALTER COLUMN {quote(c['name'])} TYPE {c['spark_type']}")
            else:
                refused.append(
                    f"column {c['name']}: {have['type']} → {c['spark_type']} is not a type promotion Iceberg allows "
                    f"(int→bigint, float→double, decimal(p,s)→decimal(p2,s) with p2 ≥ p); the data already written keeps {have['type']}"
                )
        if not have["nullable"] and c["nullable"]:
            alters.append(f"ALTER TABLE {target} ALTER COLUMN {quote(c['name'])} DROP NOT NULL")
        elif have["nullable"] and not c["nullable"]:
            if holds_data:
                refused.append(f"column {c['name']}: nullable → NOT NULL: rows already written may hold NULLs")
            else:
                require.append(c["name"])
    for col in columns:
        if col["name"].lower() not in continued:
            drops.append(f"ALTER TABLE {target} DROP COLUMN {quote(col['name'])}")
    # Spark's INSERT maps columns by position and meshkit keeps the manifest's order: columns
    # are moved (metadata only) when the table's order, after the renames, drops and additions,
    # is another.
    renamed = {(c.get("renamed_from") or "").lower(): c["name"] for c in spec["output"]["columns"] if c.get("renamed_from")}
    kept = [renamed.get(c["name"].lower(), c["name"]) for c in columns if c["name"].lower() in continued]
    order = [n.lower() for n in kept] + [c["name"].lower() for c in adds]
    wanted = [c["name"] for c in spec["output"]["columns"] if c["name"].lower() in set(order)]
    moves = []
    if order != [n.lower() for n in wanted]:
        moves.append(f"ALTER TABLE {target} ALTER COLUMN {quote(wanted[0])} FIRST")
        moves += [f"ALTER TABLE {target} ALTER COLUMN {quote(b)} AFTER {quote(a)}" for a, b in zip(wanted, wanted[1:])]
    want_id = spec["output"].get("identifier") or []
    set_id = None
    # Identifier fields are a set: Iceberg lists them in no particular order.
    if identifier is not None and sorted(i.lower() for i in identifier) != sorted(i.lower() for i in want_id):
        if identifier:
            refused.append(
                f"identifier (merge) keys ({', '.join(identifier)}) → ({', '.join(want_id)}): rows merged under the old keys would be duplicated under the new ones"
            )
        elif want_id:
            set_id = want_id
    out = {"renames": renames, "drops": drops, "alters": alters, "adds": adds, "moves": moves, "require": require, "identifier": set_id, "refused": []}
    if refused:
        help = []
        if any("promotion" in r or "identifier" in r for r in refused):
            help.append("keep the table's type (or a promotion: int→bigint, float→double, a wider decimal precision) and keys, or write a new table under another name")
        if any("NOT NULL" in r for r in refused):
            help.append("declare the column nullable = true, or recompute the table (mesh run --job … --full-refresh empties it first)")
        out["refused"] = refused
        out["message"] = (
            f"job `{spec['job']}`: {ref}: {'a change is' if len(refused) == 1 else 'changes are'} refused"
            f"{' (the table holds data)' if holds_data else ''}: {'; '.join(refused)}; nothing was written. Fix: {' Or: '.join(help)}"
        )
    return out


def layout_statements(
    spec: dict,
    partitioning: list[str],
    properties: dict[str, str],
    columns: list | None = None,
    identifier: list[str] | None = None,
    holds_data: bool = True,
) -> list[str]:
    """DDL that gives the output table its declared columns, partition spec, sort order and properties.

    Terraform creates Iceberg tables unpartitioned (it cannot express transforms), so the first
    run evolves the spec; on an empty table that rewrites nothing, and later runs find it equal.
    A changed `partition_by` is spec evolution: files already written keep their spec, new
    writes use the new one (as the local runtime does). Terraform never updates the table's
    columns afterwards (the runtime owns the table): `columns` (the table's schema as dicts, see
    `schema_evolution`; or just its column names, then only missing columns are added) brings
    it to the manifest. A refused change raises JobFailed before any statement runs. The
    identifier fields come last (`SET IDENTIFIER FIELDS` needs NOT NULL columns, which the
    caller makes between the others and it: see `shape_table`).
    """
    target = target_name(spec)
    out = spec["output"]
    stmts = []
    evo = None
    if columns is not None and columns and isinstance(columns[0], str):
        present = {c.lower() for c in columns}
        added = [c for c in out["columns"] if c["name"].lower() not in present]
        if added:
            stmts.append(f"ALTER TABLE {target} ADD COLUMNS ({schema_ddl(added)})")
    elif columns is not None:
        evo = schema_evolution(spec, columns, identifier, holds_data)
        if evo["refused"]:
            raise JobFailed(evo["message"])
        stmts += evo["renames"]
    have = {_norm(p) for p in partitioning}
    want = {_norm(p) for p in out["partition_by"]}
    # Fields of dropped columns go before the columns (Iceberg keeps a column the current spec uses).
    stmts += [f"ALTER TABLE {target} DROP PARTITION FIELD {p}" for p in partitioning if _norm(p) not in want]
    if evo:
        stmts += evo["drops"] + evo["alters"]
        if evo["adds"]:
            stmts.append(f"ALTER TABLE {target} ADD COLUMNS ({schema_ddl(evo['adds'])})")
        stmts += evo["moves"]
    stmts += [f"ALTER TABLE {target} ADD PARTITION FIELD {p}" for p in out["partition_by"] if _norm(p) not in have]
    if out["sort_order"] and _norm(properties.get("sort-order", "")) != _norm(", ".join(out["sort_order"])):
        stmts.append(f"ALTER TABLE {target} WRITE ORDERED BY {', '.join(out['sort_order'])}")
    elif not out["sort_order"] and properties.get("sort-order"):
        stmts.append(f"ALTER TABLE {target} WRITE UNORDERED")
    changed = {k: v for k, v in sorted(out["properties"].items()) if properties.get(k) != v}
    if changed:
        props = ", ".join(f"{literal(k)}={literal(v)}" for k, v in changed.items())
        stmts.append(f"ALTER TABLE {target} SET TBLPROPERTIES ({props})")
    if evo and evo["identifier"]:
        stmts.append(f"ALTER TABLE {target} SET IDENTIFIER FIELDS {', '.join(quote(i) for i in evo['identifier'])}")
    return stmts


def iceberg_conf(spec: dict, catalog: dict[str, str] | None = None) -> dict[str, str]:
    """The session settings of the Iceberg Glue catalog (the same chain the Glue job's `--conf` passes).

    `catalog` replaces the Glue catalog's own properties (implementation, file IO, warehouse)
    under the same catalog name: the local tests run the same statements on a Hadoop catalog.
    """
    cat = spec["iceberg"]["catalog"]
    if catalog is None:
        catalog = {
            "warehouse": spec["iceberg"]["warehouse"],
            "catalog-impl": "org.apache.iceberg.aws.glue.GlueCatalog",
            "io-impl": "org.apache.iceberg.aws.s3.S3FileIO",
        }
    conf = {
        "spark.sql.extensions": "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions",
        f"spark.sql.catalog.{cat}": "org.apache.iceberg.spark.SparkCatalog",
        **{f"spark.sql.catalog.{cat}.{k}": v for k, v in catalog.items()},
        # Timestamps without zone are wall-clock values; keep Spark's session zone out of them.
        "spark.sql.session.timeZone": "UTC",
    }
    # Consumed products: one more catalog per producer account, the same client naming that
    # account's catalog (Iceberg's `glue.id`): Glue serves what the producer's resource policy
    # grants this job's role, and refuses the rest.
    for account in sorted({i["catalog_id"] for i in spec.get("inputs", []) if i.get("catalog_id")}):
        other = product_catalog(spec, account)
        conf[f"spark.sql.catalog.{other}"] = "org.apache.iceberg.spark.SparkCatalog"
        conf.update({f"spark.sql.catalog.{other}.{k}": v for k, v in catalog.items()})
        conf[f"spark.sql.catalog.{other}.glue.id"] = account
    return conf


# The floors `mesh optimize` enforces: an orphan window under a day deletes files of writes
# still in flight (Iceberg's own warning), and expiry always keeps the current snapshot.
ORPHAN_FLOOR_DAYS = 1.0
RETAIN_LAST_FLOOR = 1


def maintenance_statements(spec: dict, now) -> list[str]:
    """The Iceberg Spark procedures of a maintenance spec (`"kind": "maintenance"`): the
    manifest's compaction, retention and orphan settings, in that order, as `mesh optimize`
    runs them. Unsafe settings raise before any statement runs. `now` is a naive UTC datetime.

    Job state (`mesh.state.*`) is not carried into the rewrite's `replace` snapshot: the
    procedure does not read `CommitMetadata`, and a property fixed when the rewrite is planned
    would be stale if a job committed meanwhile. The state survives through the `mesh-state` tag
    every state commit moves, which `expire_snapshots` keeps, and `find_state` follows it."""
    import datetime as dt

    cat = quote(spec["iceberg"]["catalog"])
    t = spec["table"]
    table = literal(f"{t['database']}.{t['table']}")
    o = spec["optimizers"]
    ts = lambda days: f"TIMESTAMP '{(now - dt.timedelta(days=float(days))).strftime('%Y-%m-%d %H:%M:%S.%f')}'"  # noqa: E731
    stmts = []
    c = o.get("compaction")
    if c:
        target = int(c["target_file_size_mb"]) * 1024 * 1024
        options = {
            "target-file-size-bytes": target,
            "min-file-size-bytes": int(target * float(c["min_file_size_ratio"])),
            "min-input-files": int(c["min_input_files"]),
        }
        # A data file with at least this many delete files is rewritten even when its size
        # alone would not select it (Iceberg's `delete-file-threshold`; the manifest's
        # compaction.delete_file_threshold, as Glue's optimizer uses it).
        if c.get("delete_file_threshold") is not None:
            threshold = int(c["delete_file_threshold"])
            if threshold < 1:
                raise JobFailed(f"{t['reference']}: compaction.delete_file_threshold = {threshold} must be 1 or more")
            options["delete-file-threshold"] = threshold
        # A table with a sort order is compacted sorted, as `mesh optimize` does.
        strategy = "sort" if t.get("sort_order") else "binpack"
        pairs = ", ".join(f"{literal(k)}, {literal(str(v))}" for k, v in options.items())
        stmts.append(f"CALL {cat}.system.rewrite_data_files(table => {table}, strategy => '{strategy}', options => map({pairs}))")
    r = o.get("retention")
    if r:
        if int(r["retain_last"]) < RETAIN_LAST_FLOOR:
            raise JobFailed(
                f"{t['reference']}: retention.retain_last = {r['retain_last']} would expire the current snapshot; keep at least {RETAIN_LAST_FLOOR}"
            )
        if not r.get("clean_expired_files", True):
            raise JobFailed(
                f"{t['reference']}: retention.clean_expired_files = false cannot be honoured: Iceberg's expire_snapshots "
                "procedure always deletes the files only expired snapshots reach; set it to true or leave retention to Glue's optimizer"
            )
        stmts.append(
            f"CALL {cat}.system.expire_snapshots(table => {table}, older_than => {ts(r['snapshot_retention_days'])}, retain_last => {int(r['retain_last'])})"
        )
    orphans = o.get("orphans")
    if orphans:
        days = float(orphans["retention_days"])
        if days < ORPHAN_FLOOR_DAYS:
            raise JobFailed(
                f"{t['reference']}: an orphan window of {days * 24:.1f} hours is under the 1-day floor: files of writes still in "
                "flight would be deleted and the table corrupted; use orphans.retention_days = 1 or more (default 3)"
            )
        stmts.append(f"CALL {cat}.system.remove_orphan_files(table => {table}, older_than => {ts(days)})")
    return stmts


def log_line(event: str, spec: dict | None = None, run_id: str | None = None, **fields) -> str:
    record = {"ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "level": fields.pop("level", "info"), "event": event}
    if spec is not None:
        record.update({"job": spec["job"], "project": spec["project"], "env": spec["env"]})
    if run_id is not None:
        record["run_id"] = run_id
    record.update(fields)
    return json.dumps(record, default=str, sort_keys=False)


def log(event: str, spec: dict | None = None, run_id: str | None = None, **fields) -> None:
    print(log_line(event, spec, run_id, **fields), file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- daily operation (pure)
# Incremental bookmarks and time intervals, encoded exactly as the Rust runtime encodes them
# (mesh_core::incremental, mesh_core::interval), so a table written by either engine can be
# continued by the other. The state lives in the output table's snapshot summary properties.

# Files modified this long before the newest processed file count as processed.
BOOKMARK_BAND_MS = 60 * 60 * 1000
# Processed files a bookmark keeps listing below the band (meshkit's KEEP_FILES).
BOOKMARK_KEEP_FILES = 200


def latest_property(snapshots: list[dict], current_id: int | None, key: str) -> str | None:
    """`key` in the summary of the current snapshot, else of its nearest ancestor that has it.

    `snapshots`: rows of the table's `snapshots` metadata table (snapshot_id, parent_id, summary).
    """
    by_id = {s["snapshot_id"]: s for s in snapshots}
    cursor = current_id
    while cursor is not None and cursor in by_id:
        snap = by_id[cursor]
        summary = snap.get("summary") or {}
        if key in summary:
            return summary[key]
        cursor = snap.get("parent_id")
    return None


# The tag on the snapshot holding the latest job state (mesh_iceberg::STATE_TAG): expiry keeps
# tagged snapshots, so the state outlives compactions that do not carry it (Spark's
# rewrite_data_files, Glue's managed compaction). Every commit that writes state moves it.
STATE_TAG = "mesh-state"
STATE_PREFIX = "mesh.state."


class StateLost(Exception):
    """A table with history whose job state cannot be found (mesh_iceberg::Error::StateLost)."""


def state_lost_message(table: str, key: str, why: str) -> str:
    return (
        f"table {table} has history but no findable job state `{key}`: {why}\n"
        "  help: restore it as the table property of the same name (it is read only when the snapshots cannot answer; "
        "the next commit writes it into the table's state again, then remove the property): find the last value in the "
        "`job committed` log line or run record of the job's last commit, or in the summary of the job's last snapshot "
        "in an older metadata file under the table's metadata/ folder, then e.g. in Spark or Athena "
        f"`ALTER TABLE … SET TBLPROPERTIES ('{key}' = '<value>')`; set it to '' to start over and process every input again"
    )


def find_state(snapshots: list[dict], current_id: int | None, tag_id: int | None, properties: dict[str, str], key: str) -> str | None:
    """A job's state `key`, by the rule of mesh_iceberg::job_state: the current snapshot's or its
    nearest ancestor's value; once expiry has cut the history, the value on the snapshot tagged
    `mesh-state`; `None` when the job never committed state here. A history that cannot tell
    raises `StateLost` (the why), unless the table property `key` restores it ('' = start over).

    `snapshots`: snapshot_id, parent_id, timestamp_ms, summary (the `snapshots` metadata table)."""
    by_id = {s["snapshot_id"]: s for s in snapshots}
    visited, complete, cursor = set(), True, current_id
    while cursor is not None:
        snap = by_id.get(cursor)
        if snap is None:
            complete = False
            break
        if cursor in visited:
            break
        visited.add(cursor)
        summary = snap.get("summary") or {}
        if key in summary:
            return summary[key]
        cursor = snap.get("parent_id")
    if current_id is None:
        return None
    tagged = by_id.get(tag_id) if tag_id is not None else None
    if tagged is not None:
        if tag_id in visited:
            return None
        value = (tagged.get("summary") or {}).get(key)
        if value is None:
            return None
        if not complete and tagged["timestamp_ms"] <= by_id[current_id]["timestamp_ms"]:
            return value
        why = (
            f"snapshot {tag_id} (tag `{STATE_TAG}`) holds it but is not in the current snapshot's history: "
            "the table was rolled back to before the job's last commit"
        )
    elif complete:
        return None
    else:
        why = (
            f"the snapshot holding it has expired and no snapshot is tagged `{STATE_TAG}` (maintenance that does not carry "
            "job state, e.g. Glue-managed compaction or Spark's rewrite_data_files, followed by expire_snapshots)"
        )
    if key in properties:
        return properties[key] or None
    raise StateLost(why)


def inherited_state(snapshots: list[dict], current_id: int | None, tag_id: int | None, properties: dict[str, str]) -> dict[str, str]:
    """Every `mesh.state.*` key of the ancestry and the tagged snapshot as `find_state` finds it:
    what a commit carries forward so that the snapshot it tags holds every job's state."""
    by_id = {s["snapshot_id"]: s for s in snapshots}
    keys, cursor, seen = set(), current_id, set()
    while cursor in by_id and cursor not in seen:
        seen.add(cursor)
        keys.update(by_id[cursor].get("summary") or {})
        cursor = by_id[cursor].get("parent_id")
    if tag_id in by_id:
        keys.update(by_id[tag_id].get("summary") or {})
    out = {}
    for k in sorted(k for k in keys if k.startswith(STATE_PREFIX)):
        try:
            v = find_state(snapshots, current_id, tag_id, properties, k)
        except StateLost:
            continue
        if v is not None:
            out[k] = v
    return out


def parse_bookmark(text: str | None) -> dict:
    if not text:
        return {"before_ms": 0, "files": []}
    try:
        b = json.loads(text)
        return {"before_ms": int(b["before_ms"]), "files": [dict(f) for f in b["files"]]}
    except (ValueError, KeyError, TypeError) as e:
        raise JobFailed(f"unreadable raw bookmark {text!r} in the output table's snapshot summary: {e}") from e


def _file_key(f: dict) -> tuple:
    return (f["path"], int(f["size"]), int(f["modified_ms"]))


def is_processed(bookmark: dict, f: dict) -> bool:
    return int(f["modified_ms"]) < bookmark["before_ms"] or _file_key(f) in {_file_key(x) for x in bookmark["files"]}


def changed_file(bookmark: dict, f: dict) -> dict | None:
    """The processed file `f` was when the bookmark recorded it, if `f` is that file changed
    since (same path, another size or modification time); meshkit's `RawBookmark::changed`."""
    return next((p for p in bookmark["files"] if p["path"] == f["path"] and _file_key(p) != _file_key(f)), None)


def changed_reason(was: dict, now: dict) -> str:
    """Why a changed processed file is refused: meshkit's `ChangedFile::reason`, same text."""
    if int(now["size"]) > int(was["size"]):
        how = f"grew from {was['size']} to {now['size']} bytes"
    elif int(now["size"]) != int(was["size"]):
        how = f"shrank from {was['size']} to {now['size']} bytes"
    else:
        how = "was rewritten"
    return (
        f"{how} (modified at {now['modified_ms']} ms, processed as modified at {was['modified_ms']} ms) after this job processed it; "
        "reading it again would repeat its rows, reading only part of it is not possible\n"
        "  help: land new rows in new files (a raw file is complete once landed); put this file back as it was, "
        "or move it out of the table's folder and land its rows again under a new name"
    )


def select_new_files(bookmark: dict, files: list[dict]) -> list[dict]:
    """The raw files (path under the table location, size, modified_ms) not yet processed.
    A processed file that changed since fails the run, naming it (`changed_file`)."""
    for f in files:
        was = changed_file(bookmark, f)
        if was is not None:
            raise JobFailed(f"{f.get('uri') or f['path']}: {changed_reason(was, f)}")
    return sorted((f for f in files if not is_processed(bookmark, f)), key=_file_key)


def advance_bookmark(bookmark: dict, read: list[dict], run_ms: int) -> dict:
    """The bookmark after also processing `read` in a run at `run_ms` (ms since the epoch): a
    modification time after the run's time counts as the run's time, so a file dated in the
    future cannot make files landing normally after the run look processed."""
    every = bookmark["files"] + read
    newest = max((min(int(f["modified_ms"]), run_ms) for f in every), default=None)
    before = bookmark["before_ms"] if newest is None else max(bookmark["before_ms"], newest - BOOKMARK_BAND_MS)
    keys = sorted({_file_key(f) for f in every})
    band = [k for k in keys if k[2] >= before]
    # Older processed files, the most recently modified first, up to BOOKMARK_KEEP_FILES in all
    # (meshkit's KEEP_FILES): one of them that changes is still recognised and refused.
    older = sorted((k for k in keys if k[2] < before), key=lambda k: (-k[2], k[0], k[1]))
    kept = sorted(band + older[: max(0, BOOKMARK_KEEP_FILES - len(band))])
    return {"before_ms": before, "files": [{"path": p, "size": s, "modified_ms": m} for p, s, m in kept]}


def encode_bookmark(bookmark: dict) -> str:
    # Same bytes as serde_json in the Rust runtime: no spaces, fields in declaration order.
    files = ",".join(json.dumps({"path": f["path"], "size": f["size"], "modified_ms": f["modified_ms"]}, separators=(",", ":")) for f in bookmark["files"])
    return '{"before_ms":' + str(bookmark["before_ms"]) + ',"files":[' + files + "]}"


# Every field zero-padded, as mesh-core's `interval::parse_instant` / `parse_run_time` require:
# strptime alone accepts `2026-1-5` and `2026-11- 5`, chrono would too; both engines refuse them.
_INSTANT = re.compile(r"[0-9]{4}-[0-9]{2}(?:-[0-9]{2}(?:T[0-9]{2})?)?")
_RUN_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[T ][0-9]{2}:[0-9]{2}Z?|[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?(?:Z|[+-][0-9]{2}:[0-9]{2})?)?"
)


def _parse_instant(text: str):
    import datetime as dt

    text = text.strip()
    if not _INSTANT.fullmatch(text):
        raise JobFailed(f"`{text}` is not a date or hour: use YYYY-MM-DD, YYYY-MM-DDTHH or YYYY-MM (zero-padded)")
    for fmt, n in (("%Y-%m-%d", 10), ("%Y-%m-%dT%H", 13), ("%Y-%m", 7)):
        if len(text) == n:
            try:
                return dt.datetime.strptime(text, fmt)
            except ValueError:
                pass
    raise JobFailed(f"`{text}` is not a date or hour: use YYYY-MM-DD, YYYY-MM-DDTHH or YYYY-MM")


def interval(grain: str, at: str) -> tuple:
    """The (start, end) datetimes of the `grain` interval containing `at` (end excluded)."""
    import datetime as dt

    t = _parse_instant(at)
    if grain == "hour":
        start = t.replace(minute=0, second=0)
        return start, start + dt.timedelta(hours=1)
    if grain == "day":
        start = t.replace(hour=0, minute=0, second=0)
        return start, start + dt.timedelta(days=1)
    if grain == "month":
        start = t.replace(day=1, hour=0, minute=0, second=0)
        end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
        return start, end
    raise JobFailed(f"grain `{grain}` is unknown to this runner; deploy the runner with the specs")


def interval_label(grain: str, start) -> str:
    return start.strftime({"hour": "%Y-%m-%dT%H", "day": "%Y-%m-%d", "month": "%Y-%m"}[grain])


def interval_params(grain: str, start, end) -> dict[str, str]:
    """`${interval_start}`, `${interval_end}` and `run_date`, as `mesh run` binds them."""
    fmt = "%Y-%m-%d %H:%M:%S" if grain == "hour" else "%Y-%m-%d"
    return {"interval_start": start.strftime(fmt), "interval_end": end.strftime(fmt), "run_date": start.strftime("%Y-%m-%d")}


def interval_predicate(column: str, column_type: str, start, end) -> str:
    def lit(t):
        return f"DATE '{t:%Y-%m-%d}'" if column_type == "date" else f"TIMESTAMP '{t:%Y-%m-%d %H:%M:%S}'"

    return f"{column} >= {lit(start)} AND {column} < {lit(end)}"


def _next_start(grain: str, start):
    return interval(grain, interval_label(grain, start))[1]


def parse_done(grain: str, text: str | None) -> set:
    """Interval labels of `2026-10-01/2026-11-09,2026-11-12` (other grains' labels are dropped)."""
    done = set()
    for part in (p.strip() for p in (text or "").split(",")):
        if not part:
            continue
        a, _, b = part.partition("/")
        b = b or a
        try:
            start, last = interval(grain, a)[0], interval(grain, b)[0]
        except (JobFailed, OverflowError):
            # OverflowError: an interval ending after year 9999, recorded by an old version
            # that marked future intervals done; never complete, so never done.
            continue
        if interval_label(grain, start) != a or interval_label(grain, last) != b:
            continue
        while start <= last and len(done) <= 1_000_000:
            try:
                nxt = _next_start(grain, start)
            except OverflowError:
                break
            done.add(interval_label(grain, start))
            start = nxt
    return done


def encode_done(grain: str, done: set) -> str:
    starts = sorted(interval(grain, label)[0] for label in done)
    parts, run = [], None
    for s in starts:
        if run and _next_start(grain, run[1]) == s:
            run = (run[0], s)
        else:
            if run:
                parts.append(run)
            run = (s, s)
    if run:
        parts.append(run)
    return ",".join(interval_label(grain, a) if a == b else f"{interval_label(grain, a)}/{interval_label(grain, b)}" for a, b in parts)


def snapshot_property_options(props: dict[str, str]) -> dict[str, str]:
    """Iceberg's Spark write options that put `props` into the committed snapshot's summary."""
    return {f"snapshot-property.{k}": v for k, v in sorted(props.items())}


# The source column that marks the one row standing for "the interval" in an interval write.
INTERVAL_MARKER = "__mesh_interval"


def interval_write_statements(spec: dict, start, end, relation: str = SOURCE_VIEW) -> list[str]:
    """Replaces exactly the interval's rows with `relation`, in one commit, whatever the partition
    spec, rewriting only the data files that hold rows of the interval.

    Iceberg's overwrite-by-filter refuses a filter finer than the partitions (a month file holding
    other days), and a DELETE then an INSERT are two snapshots, the first one without the
    interval, in main's history. A copy-on-write MERGE whose target rows are removed by a
    `NOT MATCHED BY SOURCE` clause makes Spark scan and rewrite every file of the table, since
    any target row could be unmatched; so the interval's rows are matched instead, by one marker
    row added to the source: the ON condition's target-only half (the interval) is pushed down
    to the target scan (partition and column-metrics pruning), and copy-on-write rewrites only
    the files in which a row matched. The job's rows never match (their marker is false) and are
    inserted; the marker row matches every target row of the interval, each once."""
    target = target_name(spec)
    tr = spec["time_range"]
    names = [quote(c["name"]) for c in spec["output"]["columns"]]
    marker = quote(INTERVAL_MARKER)
    predicate = interval_predicate("t." + quote(tr["column"]), tr["column_type"], start, end)
    return [
        "\n".join(
            [
                f"MERGE INTO {target} t",
                f"USING (SELECT {', '.join(names)}, false AS {marker} FROM {relation}",
                f"  UNION ALL SELECT {', '.join('NULL' for _ in names)}, true) s",
                f"ON s.{marker} AND {predicate}",
                "WHEN MATCHED THEN DELETE",
                f"WHEN NOT MATCHED AND NOT s.{marker} THEN INSERT ({', '.join(names)}) VALUES ({', '.join('s.' + n for n in names)})",
            ]
        )
    ]


def daily_support_error(spec: dict) -> str | None:
    """A spec this runner cannot run as `mesh run` would, with the reason (`None`: it can).

    `mesh validate` refuses these manifests already; a hand-edited or stale spec must not reach
    Spark, where an incremental overwrite would drop what earlier runs wrote and a time-range
    job written as a plain overwrite would replace the whole table with one interval."""
    inc, tr = spec.get("incremental"), spec.get("time_range")
    mode = spec["write"]["mode"]
    job = f"job `{spec['job']}`"
    fix = "; rebuild the job spec with `mesh build` (mesh validate explains the rule)"
    if inc and tr:
        return f"{job} is both incremental and time-range, which no engine runs{fix}"
    if inc:
        if mode not in ("append", "merge"):
            return f"{job} is incremental with mode `{mode}`: each run sees only new input, so it would replace earlier runs' rows{fix}"
        if inc.get("on_rewrite") not in ("error", "full_read"):
            return f"{job}: on_rewrite `{inc.get('on_rewrite')}` is unknown to this runner; deploy the runner with the specs"
        refs = {i["reference"] for i in spec["inputs"]}
        unknown = sorted(set(inc["bookmarks"]) - refs)
        if unknown:
            return f"{job}: incremental input {', '.join(unknown)} is not one of its inputs{fix}"
    if tr:
        if mode != "overwrite":
            return f"{job} is a time-range job with mode `{mode}`; a time-range job overwrites exactly its interval{fix}"
        if tr["grain"] not in ("hour", "day", "month"):
            return f"{job}: grain `{tr['grain']}` is unknown to this runner; deploy the runner with the specs"
    return None


# The run's time and the intervals due at it, exactly as mesh_core::interval::due decides
# (crates/mesh-core/tests/glue_daily.rs checks both on the same cases).
MAX_INTERVALS = 4000


def parse_run_time(text: str):
    """A run's time as naive UTC: RFC 3339 (`2026-12-07T06:00:00Z`, `…+01:00`, what the
    schedule passes), `YYYY-MM-DDTHH:MM[:SS]` / `YYYY-MM-DD HH:MM[:SS]` (UTC) or a date."""
    import datetime as dt

    t = text.strip()
    if not _RUN_TIME.fullmatch(t):
        raise JobFailed(f"run_at = `{text}` is not a time: use 2026-12-07T06:00:00Z (every field zero-padded)")
    if t.endswith("Z"):
        t = t[:-1] + "+00:00"
    try:
        v = dt.datetime.fromisoformat(t)
    except ValueError:
        raise JobFailed(f"run_at = `{text}` is not a time: use 2026-12-07T06:00:00Z") from None
    if v.tzinfo is not None:
        v = v.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return v


def format_instant(t) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S UTC")


def _containing(grain: str, t):
    if grain == "hour":
        return t.replace(minute=0, second=0, microsecond=0)
    if grain == "day":
        return t.replace(hour=0, minute=0, second=0, microsecond=0)
    return t.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _end(grain: str, start):
    return interval(grain, interval_label(grain, start))[1]


def due_plan(tr: dict, done: set, at) -> dict:
    """The intervals a scheduled run at `at` processes: complete (end + lag <= at) and not
    done, from `start` (else after the latest done one, else only the latest complete one),
    oldest first, at most MAX_INTERVALS; plus the `lookback` latest done ones again."""
    import datetime as dt

    grain = tr["grain"]
    lag = int(tr.get("lag_seconds") or 0)
    lookback = int(tr.get("lookback") or 0)
    in_progress = _containing(grain, at - dt.timedelta(seconds=lag))
    last_complete = _containing(grain, in_progress - dt.timedelta(seconds=1))
    starts = sorted(interval(grain, label)[0] for label in done)
    not_complete = [s for s in starts if s >= in_progress]
    before = [s for s in starts if s < in_progress]
    done_starts = set(starts)
    if tr.get("start"):
        first = interval(grain, tr["start"])[0]
    elif before:
        first = _end(grain, before[-1])
    else:
        first = last_complete
    due, more = [], False
    i = first
    while i <= last_complete:
        if i not in done_starts:
            if len(due) == MAX_INTERVALS:
                more = True
                break
            due.append((i, "missing"))
        i = _end(grain, i)
    if not more:
        due += [(s, "lookback") for s in before[::-1][:lookback]]
        due.sort()
    return {
        "due": [(interval_label(grain, s), why) for s, why in due],
        "more_due": more,
        "in_progress": interval_label(grain, in_progress),
        "in_progress_complete_at": _end(grain, in_progress) + dt.timedelta(seconds=lag),
        "not_complete_done": [interval_label(grain, s) for s in not_complete],
    }


def describe_plan(plan: dict) -> str:
    """The same words as `mesh run` prints (mesh_core::interval::DuePlan::describe)."""
    why = {"missing": "complete, not done", "lookback": "lookback: done, again for late data"}
    parts = [f"{label} ({why[w]})" for label, w in plan["due"]] or ["nothing due"]
    if plan["more_due"]:
        parts.append(f"more than {MAX_INTERVALS} due: the next run continues")
    parts.append(f"{plan['in_progress']} in progress: not yet (complete at {format_instant(plan['in_progress_complete_at'])})")
    return ", ".join(parts)


def names_interval(params: dict[str, str]) -> bool:
    return "interval_start" in params or "run_date" in params


def check_complete(grain: str, start, end, at, lag_seconds: int) -> None:
    import datetime as dt

    complete = end + dt.timedelta(seconds=lag_seconds)
    if complete > at:
        lag = f" and the job's lag is {lag_seconds} s" if lag_seconds else ""
        raise JobFailed(
            f"{interval_label(grain, start)} is not complete at the run's time {format_instant(at)}: it ends at {format_instant(end)}{lag}, so its data may still arrive\n"
            f"  help: a run processes only complete intervals; run it after {format_instant(complete)}, or pass --at to replay a run at a later time"
        )


def bind_interval(spec: dict, params: dict[str, str], done_text: str | None, at) -> tuple:
    """A time-range run's interval, as `mesh run` binds it: from `interval_start`, else
    `run_date`, else the oldest interval due at the run's time `at`; it must be complete at
    `at`. Adds `${interval_start}`, `${interval_end}` (and `run_date` when absent) to `params`;
    returns (start, end, label, the done set with it, encoded), dropping intervals recorded as
    done before they were complete."""
    tr = spec["time_range"]
    grain = tr["grain"]
    done = parse_done(grain, done_text)
    plan = due_plan(tr, done, at)
    if "interval_start" in params:
        name, value = "interval_start", params["interval_start"]
    elif "run_date" in params:
        name, value = "run_date", params["run_date"]
    elif plan["due"]:
        name, value = "interval_start", plan["due"][0][0]
    else:
        raise JobFailed(f"no interval is due: {describe_plan(plan)}")
    try:
        start, end = interval(grain, value)
    except JobFailed:
        raise JobFailed(f"parameter {name} = `{value}` is not a date: use YYYY-MM-DD (or YYYY-MM-DDTHH for hourly jobs)") from None
    check_complete(grain, start, end, at, int(tr.get("lag_seconds") or 0))
    for k, v in interval_params(grain, start, end).items():
        if k != "run_date" or "run_date" not in params:
            params[k] = v
    label = interval_label(grain, start)
    done = (done - set(plan["not_complete_done"])) | {label}
    return start, end, label, encode_done(grain, done)


def interval_check_sql(spec: dict, start, end, relation: str = OUTPUT_VIEW) -> str:
    """Rows of the result outside the interval (or with no time): the write replaces only the
    interval, so such a row would be duplicated by the run of its own interval."""
    tr = spec["time_range"]
    c = quote(tr["column"])
    predicate = interval_predicate(c, tr["column_type"], start, end)
    return f"SELECT COUNT(*), CAST(MIN({c}) AS STRING), CAST(MAX({c}) AS STRING) FROM {relation} WHERE NOT ({predicate}) OR {c} IS NULL"


def interval_error(spec: dict, label: str, params: dict[str, str], count: int, low, high) -> str:
    column = spec["time_range"]["column"]
    return (
        f"{count} row(s) of the result have `{column}` outside the interval {label} [{params['interval_start']}, "
        f"{params['interval_end']}) (from {low or ''} to {high or ''}, or null); a time-range run replaces only its interval\n"
        "  help: filter the inputs with `${interval_start}` and `${interval_end}` in the job's SQL"
    )


def increment_plan(snapshots: list[dict], current_id: int | None, from_id: int | None) -> tuple:
    """How to read an incremental Iceberg input (meshkit's `appended_since`): `("none",)` when
    the table has no snapshot, `("full",)` the first time or when `from_id` is no ancestor of the
    current snapshot (expired, rolled back), `("appended",)` when only appends and compactions
    (`replace`, no row changed) follow it, else `("rewritten", snapshot_id, operation)` for the
    first snapshot since that changed rows. `snapshots`: rows of the `snapshots` metadata table."""
    if current_id is None:
        return ("none",)
    if from_id is None:
        return ("full",)
    by_id = {s["snapshot_id"]: s for s in snapshots}
    chain, cursor = [], current_id
    while cursor != from_id:
        snap = by_id.get(cursor)
        if snap is None:
            return ("full",)
        chain.append(snap)
        cursor = snap.get("parent_id")
    for snap in reversed(chain):
        op = snap.get("operation") or (snap.get("summary") or {}).get("operation")
        if op == "append" or op == "replace":
            continue
        return ("rewritten", snap["snapshot_id"], op)
    return ("appended",)


def rewritten_error(reference: str, snapshot_id: int, operation: str, from_id: int) -> str:
    return (
        f"incremental input {reference}: snapshot {snapshot_id} ({operation}) rewrote rows after snapshot {from_id}, "
        "which this job processed up to; an append-only read would miss or repeat rows\n"
        '  help: set on_rewrite = "full_read" in [jobs.incremental] to read the input in full in that case, or reprocess it deliberately'
    )


def changed_state(state: dict[str, str], previous: dict[str, str | None]) -> dict[str, str]:
    """The state properties a commit writes: only those that change (meshkit's `changed_only`;
    a run that found nothing new and wrote nothing commits nothing)."""
    return {k: v for k, v in state.items() if previous.get(k) != v}


def relative_file(root: str, path: str) -> str | None:
    """A listed file's path under its table's folder, as the bookmark names it (`d=1/a.csv`);
    `None` for what is not data: hidden and marker files and folders (`_SUCCESS`, `.crc`,
    `_temporary/`), as meshkit's lister skips them. Both are URI paths (no scheme)."""
    base = root.rstrip("/") + "/"
    if not path.startswith(base):
        return None
    rel = path[len(base) :]
    parts = rel.split("/")
    if not rel or any(not p or p.startswith((".", "_")) for p in parts):
        return None
    return rel


_GLOB = re.compile(r"([\\\[\]{}*?])")


def glob_escape(path: str) -> str:
    """A file path Spark's reader takes literally (it expands glob characters)."""
    return _GLOB.sub(r"\\\1", path)


# --------------------------------------------------------------------------- Spark


def schema_ddl(columns: list[dict]) -> str:
    return ", ".join(f"{quote(c['name'])} {c['spark_type']}" for c in columns)


def product_catalog(spec: dict, account: str) -> str:
    """The Spark catalog of another account's Glue Data Catalog (a consumed product's
    producer): `glue_catalog_111111111111`, the Glue catalog with `glue.id` set to it."""
    return f"{spec['iceberg']['catalog']}_{account}"


def input_table(spec: dict, inp: dict) -> str:
    account = inp.get("catalog_id")
    cat = product_catalog(spec, account) if account else spec["iceberg"]["catalog"]
    return ".".join(quote(p) for p in (cat, inp["database"], inp["table"]))


# --------------------------------------------------------------------------- raw tables (bad-row policy)
# The local engine's raw reader (mesh_core::raw), on Spark: every declared column of every row is
# read as text and checked (type and nullability, also columns the query does not read: Spark
# would prune them), quoted newlines are parsed (`multiLine`), and each rejected row gets the
# reason meshkit gives it: `file`, `line`, `column_name`, `reason`, `raw`, as in `<table>_rejected`.

# Declared types as the manifest names them, from the spec's Spark types (`translate::spark_type`).
_MESH_TYPES = {"bigint": "long", "timestamp_ntz": "timestamp", "timestamp": "timestamptz"}

NOT_NULL_REASON = "is NULL but the column is declared nullable = false"
TZ_OFFSET_HINT = ": it has a time zone offset, which a `timestamp` column (without zone) cannot keep; declare the column `timestamptz`"
NOT_UTF8_REASON = "is not UTF-8 text"
ROW_COLUMNS = ("__file", "__line", "__raw", "__line_reason")


def mesh_type(spark_type: str) -> str:
    return _MESH_TYPES.get(spark_type, spark_type.replace(" ", ""))


def _sql_string(s: str) -> str:
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def valid_text_sql(text: str, spark_type: str) -> str:
    """SQL that is true when the (non-null) text `text` parses as the declared type the way
    meshkit's `parse_text` parses it (the text trimmed, the same shapes accepted)."""
    t = mesh_type(spark_type)
    s = f"trim({text})"
    if t in ("string", "binary"):
        return "true"
    if t == "boolean":
        return f"lower({s}) IN ('true', '1', 't', 'yes', 'false', '0', 'f', 'no')"
    if t in ("int", "long"):
        return f"({s} RLIKE '^[+-]?[0-9]+$' AND try_cast({s} AS {spark_type}) IS NOT NULL)"
    if t in ("float", "double"):
        number = "^[+-]?(([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?|(?i)(inf|infinity|nan))$"
        return f"({s} RLIKE {_sql_string(number)} AND try_cast({s} AS {spark_type}) IS NOT NULL)"
    if t.startswith("decimal"):
        return f"({s} RLIKE '^[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)$' AND try_cast({s} AS {spark_type}) IS NOT NULL)"
    if t == "date":
        return f"({s} RLIKE '^[0-9]{{4}}-[0-9]{{1,2}}-[0-9]{{1,2}}$' AND try_cast({s} AS date) IS NOT NULL)"
    shape = "^[0-9]{4}-[0-9]{2}-[0-9]{2}([ T][0-9]{2}:[0-9]{2}(:[0-9]{2}([.][0-9]{1,9})?)?)?"
    if t == "timestamptz":
        shape += "(Z|[+-][0-9]{2}:[0-9]{2})?"
    return f"({s} RLIKE {_sql_string(shape + '$')} AND try_cast({s} AS {spark_type}) IS NOT NULL)"


def value_sql(text: str, spark_type: str) -> str:
    """The typed value of a checked text, as meshkit builds it (strings untrimmed)."""
    t = mesh_type(spark_type)
    if t == "string":
        return text
    if t == "binary":
        return f"CAST({text} AS binary)"
    if t == "boolean":
        return f"lower(trim({text})) IN ('true', '1', 't', 'yes')"
    return f"CAST(trim({text}) AS {spark_type})"


# The longest raw value echoed into a reason or an error, in characters (mesh_core::raw::echo):
# a whole field of a broken file would flood the log and the rejected rows' reasons.
MAX_ECHO_CHARS = 200


def echo(text: str) -> str:
    return text if len(text) <= MAX_ECHO_CHARS else text[:MAX_ECHO_CHARS] + "\u2026"


def echo_sql(text: str) -> str:
    return f"CASE WHEN char_length({text}) > {MAX_ECHO_CHARS} THEN concat(substring({text}, 1, {MAX_ECHO_CHARS}), '\u2026') ELSE {text} END"


def reason_sql(columns: list[dict]) -> str:
    """A struct (column, reason) for the first problem of a row, in meshkit's order: a
    line-level problem, then per declared column its type, then its nullability; NULL for a
    good row. Texts are in columns named as declared."""
    cases = ["WHEN `__line_reason` IS NOT NULL THEN named_struct('column', CAST(NULL AS string), 'reason', `__line_reason`)"]
    for c in columns:
        q = quote(c["name"])
        name = _sql_string(c["name"])
        typ = _sql_string(mesh_type(c["spark_type"]))
        valid = valid_text_sql(q, c["spark_type"])
        if valid != "true":
            reason = f"concat('`', {echo_sql(q)}, '` is not a valid ', {typ})"
            if c["spark_type"] == "timestamp_ntz":
                # Spark would drop the offset (12:00+05:00 becomes 12:00): both engines refuse it.
                zoned = valid_text_sql(q, "timestamp")
                reason = f"CASE WHEN {zoned} THEN concat({reason}, {_sql_string(TZ_OFFSET_HINT)}) ELSE {reason} END"
            cases.append(f"WHEN {q} IS NOT NULL AND NOT {valid} THEN named_struct('column', {name}, 'reason', {reason})")
        if not c.get("nullable", True):
            cases.append(f"WHEN {q} IS NULL THEN named_struct('column', {name}, 'reason', {_sql_string(NOT_NULL_REASON)})")
    return "CASE " + " ".join(cases) + " END"


def path_exists(spark, location: str) -> bool:
    jvm = spark.sparkContext._jvm
    root = jvm.org.apache.hadoop.fs.Path(location)
    fs = root.getFileSystem(spark._jsparkSession.sessionState().newHadoopConf())
    return bool(fs.exists(root))


def partition_columns(inp: dict) -> list[str]:
    return list(inp.get("partition_by") or [])


def _file_display(col):
    """`input_file_name()` as meshkit's errors show a file: a local path without `file:`."""
    from pyspark.sql import functions as F

    return F.regexp_replace(F.expr("url_decode(" + col + ")"), "^file:(//)?", "")


def raw_csv_rows(spark, inp: dict, paths: list[str], location: str):
    """A CSV table's rows as text: one column per declared column (NULL where the text is the
    null value or the column is absent), and `__file`, `__line`, `__raw`, `__line_reason`."""
    from pyspark.sql import functions as F

    c = inp["csv"]
    names = [col["name"] for col in inp["columns"]]
    parts = [p for p in partition_columns(inp) if p in names]
    data = [n for n in names if n not in parts]

    def reader():
        r = (
            spark.read.format("csv")
            .option("header", str(c["header"]).lower())
            .option("sep", c["delimiter"])
            .option("quote", c["quote"])
            .option("escape", c.get("escape") or c["quote"])
            .option("nullValue", c["null_value"])
            .option("multiLine", "true")
            .option("encoding", "UTF-8")
            .option("basePath", location)
        )
        return r

    if c["header"]:
        # The columns by the header's names, as meshkit maps them (the first header found).
        file_cols = [f for f in reader().option("inferSchema", "false").load(paths).columns if f not in parts]
        if not file_cols:
            return None
        missing = [n for n in data if n not in file_cols]
        if missing:
            raise JobFailed(
                f"{location}: the header lacks column(s) {', '.join(missing)} declared for `{inp['reference']}` (header: {echo(','.join(file_cols))})"
            )
    else:
        file_cols = data
    fields = [f"{quote(n)} string" for n in file_cols] + [f"{quote(p)} string" for p in parts] + ["`_corrupt_record` string"]
    df = (
        reader()
        .schema(", ".join(fields))
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", "_corrupt_record")
        .load(paths)
        .withColumn("__file", _file_display("input_file_name()"))
        .withColumn("__ord", F.monotonically_increasing_id())
    )
    sep = c["delimiter"]
    null_text = c["null_value"]
    joined = F.concat_ws(sep, *[F.coalesce(F.col(quote(n)), F.lit(null_text)) for n in file_cols])
    corrupt = F.col("_corrupt_record")
    raw = F.when(corrupt.isNotNull(), F.regexp_replace(corrupt, "\r?\n$", "")).otherwise(joined)
    texts = [F.col(quote(n)) for n in file_cols] + [corrupt]
    not_utf8 = F.lit(False)
    for t in texts:
        not_utf8 = not_utf8 | F.coalesce(F.instr(t, "\ufffd") > 0, F.lit(False))
    fields_found = F.size(F.split(F.regexp_replace(corrupt, "\r?\n$", ""), _regex_quote(sep), -1))
    line_reason = (
        F.when(not_utf8, F.lit(NOT_UTF8_REASON))
        .when(corrupt.isNotNull(), F.concat(fields_found.cast("string"), F.lit(f" fields where {len(file_cols)} are expected")))
    )
    df = df.withColumn("__raw", F.when(not_utf8, F.lit("")).otherwise(raw)).withColumn("__line_reason", line_reason)
    # Lines are numbered only when a row is rejected (`csv_lines`): the record's order in its
    # file and the newlines of the records before it.
    df = df.withColumn("__nl", F.length(raw) - F.length(F.regexp_replace(raw, "\n", ""))).withColumn(
        "__line", F.lit(None).cast("long")
    )
    for n in names:
        if n not in file_cols and n not in parts:
            df = df.withColumn(n, F.lit(None).cast("string"))
    return df.select(*[F.col(quote(n)) for n in names], *[F.col(x) for x in ROW_COLUMNS], "__ord", "__nl")


def csv_lines(df, header: bool):
    """The line each CSV record starts on, as meshkit's reader counts it: records in file order
    (one task reads a whole file in multiLine mode, so `__ord` follows the file), each after
    the header and the lines of the records before it (quoted newlines included)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    w = Window.partitionBy("__file").orderBy("__ord")
    before = F.coalesce(F.sum("__nl").over(w.rowsBetween(Window.unboundedPreceding, -1)), F.lit(0))
    first = 2 if header else 1
    return df.withColumn("__line", (F.row_number().over(w) - 1 + first + before).cast("long"))


def _regex_quote(s: str) -> str:
    return "".join("\\" + ch if ch in ".^$*+?{}[]\\|()" else ch for ch in s)


def raw_json_rows(spark, inp: dict, paths: list[str], location: str):
    """A JSON-lines table's rows as text (values as their JSON text, strings as they are), with
    `__file`, `__line` (1-based), `__raw` (the line), `__line_reason`. Blank lines are skipped."""
    from pyspark.sql import functions as F

    names = [col["name"] for col in inp["columns"]]
    parts = [p for p in partition_columns(inp) if p in names]
    data = [n for n in names if n not in parts]
    schema = ", ".join(["value string"] + [f"{quote(p)} string" for p in parts])
    files = (
        spark.read.format("text")
        .schema(schema)
        .option("wholetext", "true")
        .option("basePath", location)
        .load(paths)
        .withColumn("__file", _file_display("input_file_name()"))
    )
    lines = files.select(
        "__file", *[F.col(quote(p)) for p in parts], F.posexplode(F.split(F.col("value"), "\n")).alias("__pos", "__text")
    )
    lines = lines.withColumn("__text", F.regexp_replace("__text", "\r$", "")).where(F.trim(F.col("__text")) != "")
    struct = ", ".join([f"{quote(n)} string" for n in data] + ["`_corrupt_record` string"])
    parsed = F.from_json(F.col("__text"), struct, {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": "_corrupt_record"})
    lines = lines.withColumn("__parsed", parsed)
    not_utf8 = F.instr(F.col("__text"), "\ufffd") > 0
    malformed = F.col("__parsed").isNull() | F.col("__parsed._corrupt_record").isNotNull() | ~F.trim(F.col("__text")).startswith("{")
    line_reason = F.when(not_utf8, F.lit(NOT_UTF8_REASON)).when(malformed, F.lit("not a JSON object"))
    return lines.select(
        *[(F.col(f"__parsed.{quote(n)}") if n in data else F.col(quote(n))).alias(n) for n in names],
        F.col("__file"),
        (F.col("__pos") + 1).cast("long").alias("__line"),
        F.when(not_utf8, F.lit("")).otherwise(F.col("__text")).alias("__raw"),
        line_reason.alias("__line_reason"),
    )


def rejected_rows(checked):
    """The rejected rows of a checked read as `<table>_rejected` holds them, in file order."""
    from pyspark.sql import functions as F

    return checked.where(F.col("__bad").isNotNull()).select(
        F.col("__file").alias("file"),
        F.col("__line").alias("line"),
        F.col("__bad.column").alias("column_name"),
        F.col("__bad.reason").alias("reason"),
        F.col("__raw").alias("raw"),
    )


def bad_row_error(inp: dict, row) -> str:
    """meshkit's error for the first bad row under `bad_rows = "fail"` (RawError::BadRow/BadLine)."""
    where = f"{row['file']}:{row['line']}: "
    what = f"column `{row['column_name']}`: {row['reason']}" if row["column_name"] is not None else row["reason"]
    return (
        f"reading {inp['reference']}: {where}{what}\n"
        f"  help: fix the source file, or set bad_rows = \"quarantine\" on table `{inp['reference']}` to set such rows aside"
    )


def already_quarantined(spark, target: str, run_id: str) -> set[str]:
    """The raw files (the `file` column) whose rejected rows runs other than `run_id` wrote
    under `target`: a file's bad rows are quarantined once, by the first run that reads it, not
    again by every later run (meshkit's `quarantined_files`). Their rows are still rejected and
    counted; a retry of the same run writes its own folder again."""
    from pyspark.sql import functions as F
    from pyspark.sql.utils import AnalysisException

    try:
        earlier = spark.read.option("recursiveFileLookup", "true").parquet(target)
    except AnalysisException:
        return set()  # no quarantine yet
    this_run = f"/run_id={run_id}/"
    rows = (
        earlier.withColumn("__src", F.input_file_name())
        .where(~F.col("__src").contains(this_run))
        .select("file")
        .distinct()
        .collect()
    )
    return {r["file"] for r in rows if r["file"] is not None}


def read_raw_text(spark, spec: dict, inp: dict, run_id: str, location: str, paths: list[str]):
    """A CSV or JSON raw table read and checked as meshkit reads it: returns the good rows with
    the declared types. `fail` raises on the first bad row in file order; `quarantine` writes
    the rejected rows under `rejected_location/run_id=…/`."""
    from pyspark.sql import functions as F

    rows = (raw_csv_rows if inp["format"] == "csv" else raw_json_rows)(spark, inp, paths, location)
    if rows is None:
        return spark.createDataFrame([], schema_ddl(inp["columns"]))
    checked = rows.withColumn("__bad", F.expr(reason_sql(inp["columns"]))).cache()
    count = checked.where(F.col("__bad").isNotNull()).count()
    if count:
        numbered = csv_lines(checked, inp["csv"]["header"]) if inp["format"] == "csv" else checked
        rejected = rejected_rows(numbered)
        if inp.get("bad_rows") != "quarantine":
            first = rejected.orderBy("file", "line").first()
            raise JobFailed(bad_row_error(inp, first))
        target = inp.get("rejected_location")
        if target:
            already = already_quarantined(spark, target, run_id)
            if already:
                rejected = rejected.where(~F.col("file").isin(sorted(already)))
            rejected.write.mode("overwrite").parquet(f"{target.rstrip('/')}/run_id={run_id}/")
        log("bad rows quarantined", spec, run_id, level="warn", table=inp["reference"], rejected=count, folder=target)
    good = checked.where(F.col("__bad").isNull())
    return good.select(*[F.expr(value_sql(quote(c["name"]), c["spark_type"])).alias(c["name"]) for c in inp["columns"]])


def check_parquet_nulls(df, inp: dict) -> None:
    """meshkit refuses a Parquet file holding NULLs in a `nullable = false` column, read by the
    query or not (whatever the bad-row policy: a Parquet value cannot be set aside alone): the
    error names the first such file in path order and its first such column."""
    from pyspark.sql import functions as F

    strict = [c["name"] for c in inp["columns"] if not c.get("nullable", True)]
    if not strict:
        return
    nulls = [F.max(F.col(quote(n)).isNull().cast("int")).alias(n) for n in strict]
    any_null = F.lit(False)
    for n in strict:
        any_null = any_null | F.col(quote(n)).isNull()
    bad = df.where(any_null).groupBy(_file_display("input_file_name()").alias("file")).agg(*nulls).orderBy("file").first()
    if bad is not None:
        column = next(n for n in strict if bad[n])
        raise JobFailed(f"reading {inp['reference']}: {bad['file']}: column `{column}` holds NULLs but is declared nullable = false")


def read_input(
    spark,
    spec: dict,
    inp: dict,
    run_id: str,
    path: str | None = None,
    location: str | None = None,
    files: list[str] | None = None,
    files_read: dict[str, int] | None = None,
):
    """One input as a DataFrame. Raw tables are read from their files with the declared schema
    and bad-row policy, as meshkit reads them (`read_raw_text`); Iceberg tables through the
    catalog. `path`, a Parquet copy of the input, replaces both (the differential tests feed
    every engine the same Parquet files); `location` replaces a raw table's folder; `files`
    (URIs under it) reads only those. A raw table with no folder yet has no rows. `files_read`
    gets the number of raw files read under the input's reference."""
    if path:
        return spark.read.parquet(path)
    fmt = inp["format"]
    location = location or inp["location"]
    if fmt == "iceberg":
        return spark.table(input_table(spec, inp))
    if files is None:
        files = [f["uri"] for f in list_raw_files(spark, location)]
    if files_read is not None:
        files_read[inp["reference"]] = len(files)
    if not files:
        return spark.createDataFrame([], schema_ddl(inp["columns"]))
    paths = [glob_escape(f) for f in files]
    if fmt == "parquet":
        df = spark.read.schema(schema_ddl(inp["columns"])).format("parquet").option("basePath", location).load(paths)
        check_parquet_nulls(df, inp)
        return df
    return read_raw_text(spark, spec, inp, run_id, location, paths)


# --------------------------------------------------------------------------- raw files a query scans
# meshkit's raw scans leave out the files whose partition folders cannot match the query's
# filters on partition columns, and its bad-row policy and `files_read` cover the files its scans
# selected (mesh_core::raw_table): a one-day run of a 30-day table reads one day, not the whole
# table. The runner asks Spark's planner the same question before it reads a row: the job's query
# is planned over unchecked views of the raw folders, and each file-source scan's statically
# selected partitions name the files it would read.

PROBE_OPTION = "mesh_probe_input"
HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"


def _seq(seq) -> list:
    return [seq.apply(i) for i in range(seq.size())]


def _plan_nodes(root) -> list:
    """Every node of a logical or physical plan, subqueries included, and the plans that adaptive
    execution and exchange or subquery reuse hold outside `children`."""
    out, stack = [], [root]
    while stack:
        node = stack.pop()
        out.append(node)
        name = node.getClass().getSimpleName()
        if name == "AdaptiveSparkPlanExec":
            stack.append(node.executedPlan())
        elif name in ("ReusedExchangeExec", "ReusedSubqueryExec"):
            stack.append(node.child())
        stack.extend(_seq(node.children()))
        stack.extend(_seq(node.subqueries()))
    return out


def _probe_input(relation) -> str | None:
    """The input a probe relation stands for (`qualified`), None for any other relation."""
    if relation.getClass().getSimpleName() != "HadoopFsRelation":
        return None
    found = relation.options().get(PROBE_OPTION)
    return found.get() if found.isDefined() else None


def _root_path(spark, location: str) -> str:
    """A folder's path as its listings give their files' paths (no scheme)."""
    jvm = spark.sparkContext._jvm
    root = jvm.org.apache.hadoop.fs.Path(location)
    fs = root.getFileSystem(spark._jsparkSession.sessionState().newHadoopConf())
    return fs.makeQualified(root).toUri().getPath()


def _unplaced_folders(probe, base: str) -> tuple[set[str], int]:
    """The partition folders (paths under the table's folder) whose value of a partition column
    is not of the column's type, and the number of partition folders. meshkit keeps such a
    folder's files whatever the filter: only their rows can say where they belong (and they
    meet the bad-row policy)."""
    partitions = probe._jdf.queryExecution().analyzed().relation().location().partitionSpec()
    names = [f.name() for f in partitions.partitionColumns().fields()]
    folders = _seq(partitions.partitions())
    out = set()
    for pp in folders:
        rel = relative_file(base, pp.path().toUri().getPath())
        if rel is None:
            continue
        texts = dict(p.split("=", 1) for p in rel.split("/") if "=" in p)
        values = pp.values()
        if any(values.isNullAt(i) and texts.get(n) != HIVE_NULL for i, n in enumerate(names)):
            out.add(rel)
    return out, len(folders)


def scanned_raw_files(
    spark, spec: dict, sql_text: str, params: dict[str, str], run_id: str, paths: dict[str, str] | None = None, skip=()
) -> dict[str, list[str]]:
    """The files (URIs) the job's query scans of each partitioned raw input read whole (not one
    of `skip`, the incremental inputs, nor one replaced by a Parquet copy in `paths`), by
    `qualified` name: the files of the partitions its scans select, plus those of folders whose
    partition value is not of the column's type. The query, its parameters bound as the run binds
    them, is planned over views of the folders with the declared schema (partition columns typed
    as declared, from the folders); no file is read, the folders are listed. An input missing from
    the result is read in full, as today: one the plan does not show every scan of (the query
    does not read it, or a plan shape not recognised here), or every input when the query cannot
    be planned over the views (the real run then reports the error)."""
    candidates = {
        inp["qualified"]: inp
        for inp in spec["inputs"]
        if inp["format"] != "iceberg" and partition_columns(inp) and inp["reference"] not in skip and not (paths or {}).get(inp["qualified"])
    }
    if not candidates:
        return {}
    conf = "spark.sql.sources.validatePartitionColumns"
    before = spark.conf.get(conf, "true")
    # A folder value not of the column's type becomes NULL instead of failing the listing;
    # its files are kept (`_unplaced_folders`), as meshkit keeps them.
    spark.conf.set(conf, "false")
    selected: dict[str, list[str]] = {}
    try:
        views, probes = {}, {}
        for inp in spec["inputs"]:
            q = inp["qualified"]
            path = (paths or {}).get(q)
            if path:
                df = spark.read.parquet(path)
            elif inp["format"] == "iceberg":
                df = spark.table(input_table(spec, inp))
            elif path_exists(spark, inp["location"]):
                df = (
                    spark.read.format(inp["format"])
                    .schema(schema_ddl(inp["columns"]))
                    .option("basePath", inp["location"])
                    .option(PROBE_OPTION, q)
                    .load(glob_escape(inp["location"]))
                )
                probes[q] = df
            else:
                df = spark.createDataFrame([], schema_ddl(inp["columns"]))
            views[q] = view_name(q)
            df.createOrReplaceTempView(views[q])
        qe = transform(spark, spec, sql_text, params, views)._jdf.queryExecution()
        relations: dict[str, int] = {}
        for node in _plan_nodes(qe.optimizedPlan()):
            if node.getClass().getSimpleName() == "LogicalRelation":
                q = _probe_input(node.relation())
                if q:
                    relations[q] = relations.get(q, 0) + 1
        scans: dict[str, list] = {}
        for node in _plan_nodes(qe.executedPlan()):
            if node.getClass().getSimpleName() == "FileSourceScanExec":
                q = _probe_input(node.relation())
                if q:
                    scans.setdefault(q, []).append(node)
        for q, inp in candidates.items():
            if q not in probes:
                continue  # no folder: no files
            found = scans.get(q, [])
            if not relations.get(q):
                # As meshkit: an input no scan selects files of is read whole.
                log("raw input scan", spec, run_id, table=inp["reference"], files="all", why="the query's plan scans none of its files")
                continue
            if len(found) < relations[q]:
                log("raw input scan", spec, run_id, table=inp["reference"], files="all", why="a plan shape the runner does not know: some of its reads show no file scan")
                continue
            base = _root_path(spark, inp["location"])
            unplaced, folders = _unplaced_folders(probes[q], base)
            chosen: set[str] = set()
            whole = False
            for scan in found:
                parts = list(scan.selectedPartitions())
                whole = whole or len(parts) >= folders
                for pd in parts if not whole else []:
                    for f in _seq(pd.files()):
                        rel = relative_file(base, f.getPath().toUri().getPath())
                        if rel is not None:
                            chosen.add(rel)
            if whole:
                log("raw input scan", spec, run_id, table=inp["reference"], files="all", why="the query's scans select every partition")
                continue
            listed = list_raw_files(spark, inp["location"])
            keep = [f["uri"] for f in listed if f["path"] in chosen or f["path"].rpartition("/")[0] in unplaced]
            log("raw input scan", spec, run_id, table=inp["reference"], files="pruned", files_listed=len(listed), files_selected=len(keep))
            selected[q] = keep
    except Exception as e:  # noqa: BLE001 - the real run reports the query's error
        log("raw input scan", spec, run_id, level="warn", files="all", why=f"the query could not be planned over the raw folders: {str(e)[:1000]}")
        return {}
    finally:
        spark.conf.set(conf, before)
    return selected


def table_snapshots(spark, table: str) -> tuple[list[dict], int | None]:
    """The snapshots of an Iceberg table (id, parent, operation, summary) and its current one."""
    rows = spark.sql(f"SELECT snapshot_id, parent_id, operation, summary, CAST(unix_micros(committed_at) / 1000 AS BIGINT) FROM {table}.snapshots").collect()
    snaps = [{"snapshot_id": r[0], "parent_id": r[1], "operation": r[2], "summary": dict(r[3] or {}), "timestamp_ms": r[4]} for r in rows]
    main = spark.sql(f"SELECT snapshot_id FROM {table}.refs WHERE name = 'main'").collect()
    return snaps, (main[0][0] if main else None)


def state_tag(spark, table: str) -> int | None:
    """The snapshot tagged `mesh-state` (the latest state-holding snapshot), if any."""
    rows = spark.sql(f"SELECT snapshot_id FROM {table}.refs WHERE name = {literal(STATE_TAG)} AND type = 'TAG'").collect()
    return rows[0][0] if rows else None


class JobState:
    """The job's state in its output table, found by `find_state` (the current snapshot or its
    nearest ancestor holding a key, else the snapshot tagged `mesh-state`) when the run starts;
    the new values are committed with the data (`commit_with_state`), which fails if the table
    moved since `base`, the snapshot the state was read from."""

    def __init__(self, spark, spec: dict):
        self.table = target_name(spec)
        self.snapshots, self.current = table_snapshots(spark, self.table)
        self.base = self.current
        self.tag = state_tag(spark, self.table)
        self.properties = {r[0]: r[1] for r in spark.sql(f"SHOW TBLPROPERTIES {self.table}").collect()}
        self.reference = spec["output"]["reference"]
        self.new: dict[str, str] = {}

    def get(self, key: str) -> str | None:
        try:
            return find_state(self.snapshots, self.current, self.tag, self.properties, key)
        except StateLost as e:
            raise JobFailed(state_lost_message(self.reference, key, str(e))) from None

    def set(self, key: str, value: str) -> None:
        self.new[key] = value

    def changed(self) -> dict[str, str]:
        return changed_state(self.new, {k: self.get(k) for k in self.new})

    def carried(self) -> dict[str, str]:
        """Every job's state as the next snapshot must hold it: inherited, then this run's."""
        return {**inherited_state(self.snapshots, self.current, self.tag, self.properties), **self.new}


def list_raw_files(spark, location: str) -> list[dict]:
    """Every data file under a raw table's folder with its size and modification time, through
    Spark's Hadoop file systems (S3 on Glue, local folders in tests): `path` under the folder as
    the bookmark names it, `size`, `modified_ms`, and `uri` to read it. No folder: no files."""
    jvm = spark.sparkContext._jvm
    root = jvm.org.apache.hadoop.fs.Path(location)
    fs = root.getFileSystem(spark._jsparkSession.sessionState().newHadoopConf())
    if not fs.exists(root):
        return []
    root = fs.makeQualified(root)
    base = root.toUri().getPath()
    out = []
    it = fs.listFiles(root, True)
    while it.hasNext():
        status = it.next()
        path = status.getPath()
        rel = relative_file(base, path.toUri().getPath())
        if rel is not None:
            out.append({"path": rel, "size": int(status.getLen()), "modified_ms": int(status.getModificationTime()), "uri": path.toString()})
    return sorted(out, key=lambda f: f["path"])


def read_raw_increment(
    spark, spec: dict, inp: dict, key: str, state: JobState, run_id: str, run_ms: int, files_read: dict[str, int] | None = None
):
    """The files of a raw input not yet processed by this job; the advanced bookmark (the run's
    time `run_ms` capping modification times) goes into `state`, to be committed with the
    result. A processed file that changed since fails the run, naming it."""
    bookmark = parse_bookmark_at(state.get(key), key)
    listed = list_raw_files(spark, inp["location"])
    new = select_new_files(bookmark, listed)
    df = read_input(spark, spec, inp, run_id, files=[f["uri"] for f in new], files_read=files_read)
    read = [{k: f[k] for k in ("path", "size", "modified_ms")} for f in new]
    state.set(key, encode_bookmark(advance_bookmark(bookmark, read, run_ms)))
    log(
        "incremental input",
        spec,
        run_id,
        table=inp["reference"],
        files_listed=len(listed),
        files_read=len(new),
        bytes_read=sum(f["size"] for f in new),
    )
    return df


def parse_bookmark_at(text: str | None, key: str) -> dict:
    try:
        return parse_bookmark(text)
    except JobFailed as e:
        raise JobFailed(f"{e}; the output table's summary property `{key}`") from None


def read_iceberg_increment(spark, spec: dict, inp: dict, key: str, state: JobState, run_id: str):
    """The rows appended to an Iceberg input since the snapshot this job processed up to (all
    rows the first time); a snapshot since then that changed rows fails the run, naming it, or
    reads the input in full when the spec says `full_read`. The input's current snapshot goes
    into `state`."""
    table = input_table(spec, inp)
    prev = state.get(key)
    from_id = None
    if prev is not None:
        try:
            from_id = int(prev)
        except ValueError:
            raise JobFailed(f"incremental input {inp['reference']}: the bookmark `{prev}` in the output's summary property `{key}` is not a snapshot id") from None
    snapshots, current = table_snapshots(spark, table)
    plan = increment_plan(snapshots, current, from_id)
    if plan[0] == "rewritten" and spec["incremental"]["on_rewrite"] != "full_read":
        raise JobFailed(rewritten_error(inp["reference"], plan[1], plan[2], from_id))
    reader = spark.read.format("iceberg")
    if plan[0] == "none":
        df = spark.table(table)
    elif plan[0] == "appended":
        if from_id == current:
            df = spark.table(table).limit(0)
        else:
            # Iceberg's incremental append scan: the files appended after `from_id` up to `current`.
            df = reader.option("start-snapshot-id", str(from_id)).option("end-snapshot-id", str(current)).load(table)
    else:
        df = reader.option("snapshot-id", str(current)).load(table)
    if current is not None:
        state.set(key, str(current))
    log("incremental input", spec, run_id, table=inp["reference"], read=plan[0], from_snapshot=from_id, to_snapshot=current)
    return df


def age_text(seconds: int) -> str:
    """`3d4h`, `2h5m`, `7s`: an age in its two largest units (mesh_domain::product::age_text)."""
    parts = [(seconds // 86400, "d"), (seconds % 86400 // 3600, "h"), (seconds % 3600 // 60, "m"), (seconds % 60, "s")]
    first = next((i for i, (v, _) in enumerate(parts) if v > 0), 3)
    return "".join(f"{v}{u}" for v, u in parts[first:first + 2] if v > 0 or first == 3)


def _utc_ms(ms: int) -> str:
    import datetime as dt

    return format_instant(dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).replace(tzinfo=None))


def stale_error(spec: dict, inp: dict, snapshot: int, committed_ms: int, run_ms: int) -> str | None:
    """meshkit's freshness check of a product read (mesh_core::checks::freshness_check): the
    snapshot's age at the run's time against the producer's promise; the error, or None."""
    promise = inp.get("freshness_seconds")
    if promise is None:
        return None
    age = max(0, run_ms - committed_ms) // 1000
    if age <= promise:
        return None
    product = f"{inp['reference']}@{inp['version']}" if inp.get("version") else inp["reference"]
    return (f"job `{spec['job']}`: `{product}` is stale: the snapshot read ({snapshot}, committed {_utc_ms(committed_ms)}) is "
            f"{age_text(age)} old at the run's time ({_utc_ms(run_ms)}), older than its producer's promise (within "
            f"{inp['freshness']}); nothing was committed to {spec['output']['reference']}\n  help: the producer's pipeline "
            f"has not committed {product} since {_utc_ms(committed_ms)}: ask the product's owner why")


def read_product(spark, spec: dict, inp: dict, run_id: str, run_ms: int):
    """Another domain's product, from its producer's catalog, at the snapshot current when the
    run starts (named in the log, as `mesh run` names it in the run record): a commit of the
    producer during the run does not change what the job reads. A snapshot older than the
    producer's freshness promise at the run's time fails the run before anything is read."""
    table = input_table(spec, inp)
    try:
        snapshots, current = table_snapshots(spark, table)
    except Exception as e:  # noqa: BLE001 - only a missing table is reworded
        if "TABLE_OR_VIEW_NOT_FOUND" not in str(e) and "NoSuchTable" not in str(e):
            raise
        raise JobFailed(f"{inp['reference']}: {inp['qualified']} is not in the Glue catalog of account {inp['catalog_id']}; the producer deploys and runs the product in this environment first, and this account is the producer's") from None
    if current is None:
        raise JobFailed(f"{inp['reference']}: {inp['qualified']} in the catalog of account {inp['catalog_id']} has no snapshot yet; the producer runs its pipeline in this environment first")
    committed_ms = next((s["timestamp_ms"] for s in snapshots if s["snapshot_id"] == current), None)
    log("product input", spec, run_id, product=inp["reference"], catalog_id=inp["catalog_id"], snapshot=current,
        committed_at_ms=committed_ms)
    stale = stale_error(spec, inp, current, committed_ms, run_ms) if committed_ms is not None else None
    if stale:
        raise JobFailed(stale)
    return spark.read.format("iceberg").option("snapshot-id", str(current)).load(table)


def register_inputs(
    spark,
    spec: dict,
    run_id: str,
    paths: dict[str, str] | None = None,
    state: JobState | None = None,
    run_ms: int | None = None,
    query: tuple[str, dict[str, str]] | None = None,
    files_read: dict[str, int] | None = None,
) -> dict[str, str]:
    """Registers every input as a temporary view; returns `database.table` -> view name.
    With `state`, incremental inputs yield only what this job has not processed yet; `run_ms`
    is the run's time in ms since the epoch (raw bookmarks count no file as modified after it;
    the time inputs are registered when not given). With `query` (the job's SQL and its bound
    parameters), the other raw inputs are read only in the files its scans select
    (`scanned_raw_files`). `files_read` gets the raw files read per input reference."""
    views = {}
    bookmarks = (spec.get("incremental") or {}).get("bookmarks", {})
    if run_ms is None:
        run_ms = int(time.time() * 1000)
    incremental = set(bookmarks) if state is not None else set()
    scanned = scanned_raw_files(spark, spec, query[0], query[1], run_id, paths, incremental) if query else {}
    for inp in spec["inputs"]:
        path = (paths or {}).get(inp["qualified"])
        key = bookmarks.get(inp["reference"])
        if key and state is not None and not path:
            if inp["format"] == "iceberg":
                df = read_iceberg_increment(spark, spec, inp, key, state, run_id)
            else:
                df = read_raw_increment(spark, spec, inp, key, state, run_id, run_ms, files_read)
        elif inp.get("catalog_id") and not path:
            df = read_product(spark, spec, inp, run_id, run_ms)
        else:
            df = read_input(spark, spec, inp, run_id, path, files=scanned.get(inp["qualified"]), files_read=files_read)
        name = view_name(inp["qualified"])
        df.createOrReplaceTempView(name)
        views[inp["qualified"]] = name
    return views


class _Callable:
    """A Python function as a `java.util.concurrent.Callable` (py4j callback)."""

    def __init__(self, fn):
        self.fn, self.result, self.error = fn, None, None

    def call(self):
        try:
            self.result = self.fn()
        except BaseException as e:  # noqa: BLE001 - re-raised by with_commit_properties
            self.error = e
            raise
        return None

    class Java:
        implements = ["java.util.concurrent.Callable"]


def with_commit_properties(spark, props: dict[str, str], fn):
    """Runs `fn` (Spark SQL writes) so that the Iceberg commit it makes carries `props` in its
    snapshot summary: Iceberg's `CommitMetadata.withCommitProperties`, which every Spark write
    (INSERT, INSERT OVERWRITE, copy-on-write and merge-on-read MERGE) reads from a thread-local.

    The JVM calls `fn` back on the thread that holds the thread-local; `fn`'s own Spark calls
    reach that same JVM thread only in py4j's pinned-thread mode (PySpark's default), so any
    other mode is refused before anything is written."""
    if not props:
        return fn()
    from py4j.clientserver import ClientServer
    from pyspark.java_gateway import ensure_callback_server_started

    gateway = spark.sparkContext._gateway
    if not isinstance(gateway, ClientServer):
        raise JobFailed(
            "the job's state must be committed with its data, which needs PySpark's pinned-thread mode "
            "(PYSPARK_PIN_THREAD=true, the default); nothing was written"
        )
    ensure_callback_server_started(gateway)
    jvm = spark.sparkContext._jvm
    options = jvm.java.util.HashMap()
    for k, v in snapshot_property_options(props).items():
        options.put(k, v)
    call = _Callable(fn)
    try:
        jvm.org.apache.iceberg.spark.CommitMetadata.withCommitProperties(options, call, jvm.java.lang.RuntimeException._java_lang_class)
    except Exception:
        if call.error is not None:
            raise call.error from None
        raise
    if call.error is not None:
        raise call.error
    return call.result


class StateConflict(JobFailed):
    """The output table moved between reading the job's state and publishing the write: nothing
    was committed. Transient: a retry reads the new state."""

    transient = True


# A test hook: called with the branch name after the run's write landed on its branch and before
# it is published to main. Tests commit a competing run here to make a lost race deterministic.
BEFORE_PUBLISH = None


def commit_with_state(spark, spec: dict, state: JobState, props: dict[str, str], stmts: list[str], run_id: str) -> None:
    """Commits `stmts` (written against the output table) with `props` in the snapshot summary,
    exactly once: mesh-iceberg's compare-and-swap on the state (`CommitProperties.expect`) on Spark.

    The write lands on a branch created at `state.base`, the snapshot the job's state was read
    from; then one metadata commit fast-forwards `main` to the branch, moves the `mesh-state` tag
    to it and drops the branch. Iceberg's fast-forward fails unless `main` is still an ancestor of
    the branch (checked again on the refreshed metadata when the commit retries), so a run that
    raced any other commit to the table (another run of the job on Glue or `mesh run`, or another
    writer) publishes nothing and raises `StateConflict`. Spark's own append would instead retry
    through the conflict and commit the same input twice."""
    from py4j.protocol import Py4JJavaError

    table = state.table
    branch = "mesh_run_" + re.sub(r"[^A-Za-z0-9_]", "_", run_id)[:40] + "_" + uuid.uuid4().hex[:8]
    conflict = StateConflict(
        f"job `{spec['job']}`: {spec['output']['reference']} changed after this run read its state "
        f"{'at snapshot ' + str(state.base) if state.base is not None else 'on the empty table'} (another run of the job, on Glue or `mesh run`, or another writer committed first); nothing "
        "was committed. Transient: a retry reads the new state and processes only what is still new"
    )
    at = f" AS OF VERSION {state.base}" if state.base is not None else ""
    # A run killed before its publish leaves the branch: expiry drops it after a week, so it
    # does not pin its files for ever.
    spark.sql(f"ALTER TABLE {table} CREATE BRANCH {branch}{at} RETAIN 7 DAYS")
    published = False
    try:
        jvm = spark.sparkContext._jvm
        refs = jvm.org.apache.iceberg.spark.Spark3Util.loadIcebergTable(spark._jsparkSession, table).refs()
        if state.base is None and refs.containsKey("main") and refs.get("main").snapshotId() == refs.get(branch).snapshotId():
            # The table was empty when the state was read; the branch took main's first commit.
            raise conflict
        # On an empty table Iceberg roots the branch at an empty snapshot of its own.
        empty_root = refs.get(branch).snapshotId() if state.base is None else None
        target = f"{table}.branch_{branch}"

        def write():
            for stmt in stmts:
                stmt = stmt.replace(table, target)
                log("write", spec, run_id, statement=stmt)
                spark.sql(stmt)

        with_commit_properties(spark, props, write)
        if BEFORE_PUBLISH is not None:
            BEFORE_PUBLISH(branch)
        t = jvm.org.apache.iceberg.spark.Spark3Util.loadIcebergTable(spark._jsparkSession, table)
        refs = t.refs()
        head = refs.get(branch).snapshotId()
        try:
            # Iceberg checks the ancestry when the update is built and again on the refreshed
            # metadata if the commit retries.
            update = t.manageSnapshots().fastForwardBranch("main", branch)
            update = update.replaceTag(STATE_TAG, head) if refs.containsKey(STATE_TAG) else update.createTag(STATE_TAG, head)
            update.removeBranch(branch).commit()
        except Exception as e:  # noqa: BLE001 - py4j or PySpark's converted form of the Java error
            text = str(e.java_exception) if isinstance(e, Py4JJavaError) else str(e)
            if "is not an ancestor" in text or "already exists" in text or "CommitFailedException" in text:
                raise conflict from None
            raise
        published = True
        log("published", spec, run_id, snapshot_id=head, base_snapshot_id=state.base)
        if empty_root is not None:
            # That empty snapshot carries nothing: expired at once, the table's history starts
            # with the run's own commit, as a direct write's would.
            try:
                jvm.org.apache.iceberg.spark.Spark3Util.loadIcebergTable(spark._jsparkSession, table).expireSnapshots().expireSnapshotId(empty_root).commit()
            except Exception as e:  # noqa: BLE001 - an empty snapshot left in the history is harmless
                log("empty branch root kept", spec, run_id, level="warn", snapshot_id=empty_root, error=str(e)[:500])
    finally:
        if not published:
            try:
                spark.sql(f"ALTER TABLE {table} DROP BRANCH IF EXISTS {branch}")
            except Exception as e:  # noqa: BLE001 - the run's own error matters more
                log("branch left behind", spec, run_id, level="warn", branch=branch, error=str(e))


def check_in_interval(spark, spec: dict, start, end, label: str, params: dict[str, str]) -> None:
    count, low, high = spark.sql(interval_check_sql(spec, start, end)).collect()[0]
    if count:
        raise JobFailed(interval_error(spec, label, params, count, low, high))


def transform(spark, spec: dict, sql_text: str, params: dict[str, str], views: dict[str, str]):
    """The job's SQL result as a DataFrame (nothing written)."""
    sql = bind_inputs(bind_params(sql_text, params, spec.get("param_types")), views)
    check_query(spark, sql)
    # The job's SQL is analysed in ANSI mode, as mesh run computes: an overflow fails the job
    # instead of wrapping (or becoming NULL). Analysis fixes each expression's mode, so the
    # setting is restored for the runner's own statements (Iceberg's MERGE plans differ in it).
    before = spark.conf.get("spark.sql.ansi.enabled", "false")
    spark.conf.set("spark.sql.ansi.enabled", "true")
    try:
        return spark.sql(sql)
    finally:
        spark.conf.set("spark.sql.ansi.enabled", before)


def run_checks(spark, spec: dict, df, run_id: str | None = None) -> list[dict]:
    """Runs every check on `df` (as `output`); raises before any write when an error check fails."""
    df.createOrReplaceTempView(OUTPUT_VIEW)
    outcomes = []
    for check in spec["checks"]:
        sql = check_sql(check)
        row = spark.sql(sql).collect()[0]
        outcome = check_outcome(check, int(row[0] or 0))
        outcomes.append(outcome)
        log("check", spec, run_id, level="info" if outcome["passed"] else "warn", **outcome)
    for o in outcomes:
        if not o["passed"] and o["severity"] == "error":
            raise JobFailed(
                f"job `{spec['job']}`: check `{o['name']}` failed: {o['detail']}; nothing was committed to {spec['output']['reference']}"
            )
    return outcomes


def prepare_source(spark, spec: dict, df):
    """Shapes the result to the table and, for merges with the `error` rule, refuses duplicate keys.

    The local runtime's write rules hold here too, so both engines accept and refuse the same
    results: a column whose type cannot hold the result's values is an error (not a silent
    CAST), an integer that overflows its column fails the job (the shaping casts are ANSI: in
    Spark's default mode they would wrap or become NULL), and a required column must not get
    NULLs (Terraform creates every column optional, so Iceberg would not stop them).
    """
    out = spec["output"]
    for c in out["columns"]:
        if c["name"] in df.columns:
            have = df.schema[c["name"]].dataType.simpleString()
            if not writable(have, c["spark_type"]):
                raise JobFailed(
                    f"job `{spec['job']}`: the SQL result's column `{c['name']}` is {have}, which cannot be written to "
                    f"{out['reference']}.{c['name']} ({c['spark_type']}) without changing values; cast it in {spec['sql']['file']}"
                )
    df.createOrReplaceTempView("__mesh_result")
    ansi = spark.conf.get("spark.sql.ansi.enabled", "false")
    spark.conf.set("spark.sql.ansi.enabled", "true")
    try:
        # Casts take their overflow behaviour from the session when the statement is parsed.
        shaped = spark.sql(shape_sql(spec, df.columns, "__mesh_result"))
    finally:
        spark.conf.set("spark.sql.ansi.enabled", ansi)
    shaped.createOrReplaceTempView(SOURCE_VIEW)
    required = [c["name"] for c in out["columns"] if not c["nullable"]]
    if required:
        counts = spark.sql(f"SELECT {', '.join(f'COUNT_IF({quote(c)} IS NULL)' for c in required)} FROM {SOURCE_VIEW}").collect()[0]
        for c, n in zip(required, counts):
            if n:
                raise JobFailed(
                    f"job `{spec['job']}`: column `{c}` of {out['reference']} is required (nullable = false) but the SQL "
                    f"result has {n} NULL values; fill or filter them in {spec['sql']['file']}"
                )
    w = spec["write"]
    if w["mode"] == "merge" and w["on_duplicate"]["rule"] == "error":
        duplicated, rows = spark.sql(duplicate_keys_sql(w["keys"], SOURCE_VIEW)).collect()[0]
        if duplicated:
            raise JobFailed(duplicate_key_error(spec, w["keys"], int(duplicated), int(rows)))
    return shaped


def partitioning_of(describe: list[tuple[str, str]]) -> list[str]:
    """The partition fields in `DESCRIBE TABLE` output (col_name, data_type rows). Spark shows a
    spec of identity fields only as `# Partition Information` (a header row, then one row per
    column) and any other spec as `# Partitioning` (`Part N` rows with the transform)."""
    transforms, identity, section = [], [], None
    for col, kind in describe:
        name = (col or "").strip()
        if name in ("# Partitioning", "# Partition Information"):
            section = name
        elif not name or (name.startswith("#") and name != "# col_name"):
            section = None
        elif section == "# Partitioning" and name.startswith("Part "):
            transforms.append((kind or "").strip())
        elif section == "# Partition Information" and name != "# col_name":
            identity.append(name)
    return transforms or identity


def table_schema(spark, target: str) -> list[dict]:
    return [{"name": f.name, "type": f.dataType.simpleString(), "nullable": f.nullable} for f in spark.table(target).schema.fields]


def identifier_fields(properties: dict[str, str]) -> list[str]:
    """`identifier-fields` of SHOW TBLPROPERTIES (`[a,b]`; absent when there are none)."""
    text = properties.get("identifier-fields", "").strip().strip("[]")
    return [p.strip() for p in text.split(",") if p.strip()]


def require_columns(spark, target: str, names: list[str]) -> None:
    """Makes columns NOT NULL through Iceberg's API (Spark's `SET NOT NULL` is refused for
    Iceberg tables). Only called on a table with no rows, so no row can break it: Terraform
    creates every column optional, and this gives the table the manifest's nullability."""
    table = spark._jvm.org.apache.iceberg.spark.Spark3Util.loadIcebergTable(spark._jsparkSession, target)
    update = table.updateSchema().allowIncompatibleChanges()
    for n in names:
        update = update.requireColumn(n)
    update.commit()


def shape_table(spark, spec: dict) -> list[str]:
    target = target_name(spec)
    partitioning = partitioning_of([(r[0], r[1]) for r in spark.sql(f"DESCRIBE TABLE {target}").collect()])
    properties = {r[0]: r[1] for r in spark.sql(f"SHOW TBLPROPERTIES {target}").collect()}
    columns = table_schema(spark, target)
    snapshots, current = table_snapshots(spark, target)
    summary = next((s["summary"] for s in snapshots if s["snapshot_id"] == current), {})
    holds_data = current is not None and summary.get("total-records", "0") != "0"
    identifier = identifier_fields(properties)
    evo = schema_evolution(spec, columns, identifier, holds_data)
    stmts = layout_statements(spec, partitioning, properties, columns, identifier, holds_data)
    required_done = False

    def require():
        log("table layout", spec, None, statement=f"updateSchema().requireColumn({', '.join(evo['require'])}) (Iceberg API)")
        require_columns(spark, target, evo["require"])

    for s in stmts:
        if evo["require"] and not required_done and "SET IDENTIFIER FIELDS" in s:
            require()
            required_done = True
        log("table layout", spec, None, statement=s)
        spark.sql(s)
    if evo["require"] and not required_done:
        require()
    return stmts


def read_text(spark, uri: str) -> str:
    """A small text object (spec, SQL) through Spark's file systems, so S3 needs no extra client."""
    return "\n".join(r[0] for r in spark.read.text(uri, wholetext=True).collect())


def spark_session(spec: dict, catalog: dict[str, str] | None = None):
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(spec["glue_job"])
    for k, v in iceberg_conf(spec, catalog).items():
        builder = builder.config(k, v)
    return builder.getOrCreate()


def run_at(params: dict[str, str]):
    """The run's time: `run_at` (the schedule's time, passed by the state machine, or a
    replay's), else now (UTC)."""
    import datetime as dt

    if params.get("run_at"):
        return parse_run_time(params["run_at"])
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def run(spark, spec: dict, sql_text: str, params: dict[str, str], run_id: str, paths: dict[str, str] | None = None) -> dict:
    """A run of the job. A time-range job whose parameters name no interval processes every
    interval due at the run's time (`run_at`), oldest first, each in its own commit with its
    state (a failure leaves the ones before it committed); otherwise one run of `run_one`."""
    at = run_at(params)
    tr = spec.get("time_range")
    if not tr or names_interval(params):
        return run_one(spark, spec, sql_text, params, run_id, paths, at)
    plan = due_plan(tr, parse_done(tr["grain"], JobState(spark, spec).get(tr["intervals_key"])), at)
    log("intervals", spec, run_id, at=format_instant(at), plan=describe_plan(plan))
    total = {"intervals": [], "due": describe_plan(plan), "rows_written": 0, "checks": [], "mode": spec["write"]["mode"]}
    for label, _why in plan["due"]:
        one = dict(params, interval_start=label)
        try:
            r = run_one(spark, spec, sql_text, one, run_id, paths, at)
        except JobFailed as e:
            done = f" (committed before it: {', '.join(total['intervals'])})" if total["intervals"] else ""
            raise JobFailed(f"job `{spec['job']}`, interval {label}{done}: {e}") from e
        total["intervals"].append(label)
        total["interval"] = label
        total["rows_written"] += r.get("rows_written", 0)
        total["checks"] = r.get("checks", [])
    return total


def run_one(spark, spec: dict, sql_text: str, params: dict[str, str], run_id: str, paths: dict[str, str] | None = None, at=None) -> dict:
    """The whole job: inputs, SQL, checks, table layout, write. `paths` as in `read_input`.

    Incremental and time-range jobs read their state from the output table first and commit
    the new state in the same snapshot as the data: a run that fails before its commit leaves
    the state as it was (the next run reads the same input), one that committed moved both."""
    import datetime as dt

    started = time.time()
    log("job started", spec, run_id, spec_version=spec["spec_version"], glue_job=spec["glue_job"])
    unsupported = daily_support_error(spec)
    if unsupported:
        raise JobFailed(unsupported)
    tr = spec.get("time_range")
    state = JobState(spark, spec) if spec.get("incremental") or tr else None
    at = at or run_at(params)
    # The run's time caps raw files' modification times in bookmarks, as in mesh run.
    run_ms = int(at.replace(tzinfo=dt.timezone.utc).timestamp() * 1000)
    params = dict(params)
    if not tr:
        # `${run_date}` of a job that is not time-range: the run's date unless it was given.
        params.setdefault("run_date", (at or run_at(params)).strftime("%Y-%m-%d"))
    window = None
    at = at or run_at(params)
    if tr:
        start, end, label, done = bind_interval(spec, params, state.get(tr["intervals_key"]), at)
        state.set(tr["intervals_key"], done)
        window = (start, end, label)
        log("interval", spec, run_id, interval=label, interval_start=params["interval_start"], interval_end=params["interval_end"])
    # Inputs are read once the parameters are bound: the query's scans, planned with them,
    # choose the raw files read and checked (scanned_raw_files).
    files_read: dict[str, int] = {}
    views = register_inputs(spark, spec, run_id, paths, state, run_ms, (sql_text, params), files_read)
    df = transform(spark, spec, sql_text, params, views)
    # A copy-on-write MERGE prunes the target's files with a subquery over its source, and Spark
    # refuses that subquery when the source's plan is not deterministic (raw reads name each
    # row's file with input_file_name()). A local checkpoint cuts the lineage and keeps the
    # result on the executors as cache() does (dynamic allocation keeps executors holding blocks).
    # Interval writes are such MERGEs too (interval_write_statements).
    df = df.localCheckpoint() if spec["write"]["mode"] == "merge" or tr else df.cache()
    rows = df.count()
    checks = run_checks(spark, spec, df, run_id)
    if window:
        check_in_interval(spark, spec, window[0], window[1], window[2], params)
    prepare_source(spark, spec, df)
    shape_table(spark, spec)
    props = state.changed() if state else {}
    stmts = interval_write_statements(spec, window[0], window[1]) if window else write_statements(spec)
    report = {"rows_written": rows, "checks": checks, "mode": spec["write"]["mode"]}
    report["files_read"] = sum(files_read.values())
    if window:
        report["interval"] = window[2]
    mode = spec["write"]["mode"]
    if rows == 0 and (mode == "merge" or (mode == "append" and not props)):
        # Nothing to write: no empty snapshot, as in meshkit (whose merge of nothing commits
        # nothing, state included).
        report["seconds"] = round(time.time() - started, 3)
        log("nothing to commit", spec, run_id, **report)
        return report

    def write():
        for stmt in stmts:
            log("write", spec, run_id, statement=stmt)
            spark.sql(stmt)

    if state is not None:
        # Every job's state rides in the new snapshot (the tag then points at all of it).
        props = state.carried()
        commit_with_state(spark, spec, state, props, stmts, run_id)
    else:
        with_commit_properties(spark, props, write)
    if props:
        snapshots, current = table_snapshots(spark, target_name(spec))
        summary = next((s["summary"] for s in snapshots if s["snapshot_id"] == current), {})
        missing = sorted(k for k, v in props.items() if summary.get(k) != v)
        if missing:
            raise JobFailed(
                f"job `{spec['job']}`: snapshot {current} of {spec['output']['reference']} was committed without the job's state "
                f"({', '.join(missing)}); the next run would read this input again. Report this with the Spark and Iceberg versions"
            )
        report["state"] = props
    report["seconds"] = round(time.time() - started, 3)
    log("job committed", spec, run_id, **report)
    return report


def run_maintenance(spark, spec: dict, run_id: str) -> dict:
    """A pipeline `optimize` step: the table's maintenance with the manifest's settings."""
    import datetime as dt

    started = time.time()
    log("maintenance started", spec, run_id, table=spec["table"]["reference"])
    stmts = maintenance_statements(spec, dt.datetime.now(dt.timezone.utc).replace(tzinfo=None))
    results = []
    for stmt in stmts:
        log("maintenance", spec, run_id, statement=stmt)
        rows = spark.sql(stmt).collect()
        result = rows[0].asDict() if rows else {}
        if "remove_orphan_files" in stmt:
            result = {"orphan_files_deleted": len(rows)}
        results.append(result)
        log("maintenance done", spec, run_id, statement=stmt.split("(")[0], result=result)
    report = {"table": spec["table"]["reference"], "results": results, "seconds": round(time.time() - started, 3)}
    log("maintenance committed", spec, run_id, **report)
    return report


# --------------------------------------------------------------------------- retries
# The runner retries what the local engine retries (mesh-core/src/jobs/retry.rs: IO and object-store
# errors, throttling and timeouts of a remote service, a lost commit race) and fails the Glue run
# at once for anything else: another attempt would fail the same way, only later. A failed Glue
# run is therefore final: the job's Glue `max_retries` is 0 and the state machine retries only
# the StartJobRun call itself (mesh-infra/src/sfn.rs).

RETRIES_ARG = "mesh-retries"
RETRY_BACKOFF_ARG = "mesh-retry-backoff-seconds"
# The first wait of a run started outside a pipeline (which passes no backoff).
DEFAULT_RETRY_BACKOFF_SECONDS = 30

# Class names (simple names, of the exception or any superclass) that fail at once even when a
# transient one is also in the chain: the query, the runner's own checks, missing or forbidden
# objects, unreadable content, and a commit whose outcome is unknown (it may have happened:
# another attempt could write the same input twice).
_PERMANENT_CLASSES = {
    "JobFailed",
    "AnalysisException",
    "ParseException",
    "FileNotFoundException",
    "NoSuchFileException",
    "NotFoundException",
    "NoSuchTableException",
    "NoSuchNamespaceException",
    "AccessDeniedException",
    "EntityNotFoundException",
    "InvalidInputException",
    "CommitStateUnknownException",
    "CharacterCodingException",
    "JsonProcessingException",
    "FileNotFoundError",
    "PermissionError",
}
_PERMANENT_TOKENS = ("AccessDenied", "NoSuchKey", "NoSuchBucket", "EntityNotFoundException", "InvalidInputException")
# (Not 400: AWS answers throttling with 400 too.)
_PERMANENT_STATUS = re.compile(r"Status Code: (401|403|404)\b")
# Transient kinds: IO and network errors (Java's IOException family, Python's connection
# errors), AWS SDK client errors (no answer), Iceberg's lost commit race and its IO wrapper,
# and the throttling and service errors of S3 and Glue.
_TRANSIENT_CLASSES = {
    "IOException",
    "UncheckedIOException",
    "RuntimeIOException",
    "SdkClientException",
    "CommitFailedException",
    "ThrottlingException",
    "InternalServiceException",
    "OperationTimeoutException",
    "ConnectionError",
    "TimeoutError",
}
_TRANSIENT_TOKENS = (
    "ThrottlingException",
    "Rate exceeded",
    "SlowDown",
    "ServiceUnavailable",
    "InternalServiceException",
    "RequestTimeout",
    "Connection reset",
    "Read timed out",
)
_TRANSIENT_STATUS = re.compile(r"Status Code: (429|500|502|503|504)\b")


def _simple(name: str) -> str:
    return re.split(r"[.$]", name)[-1]


def error_is_transient(chain: list[dict]) -> bool:
    """Whether another attempt may succeed, from an error's chain as `error_chain` gives it
    (`classes`: the class and superclass names of each link, `message`, and `transient` when
    the error says so itself). Unknown errors are permanent, as in the local engine."""
    for link in chain:
        if link.get("transient") is not None:
            return bool(link["transient"])
    for link in chain:
        names = {_simple(c) for c in link["classes"]}
        message = link.get("message") or ""
        if names & _PERMANENT_CLASSES or any(t in message for t in _PERMANENT_TOKENS) or _PERMANENT_STATUS.search(message):
            return False
    for link in chain:
        names = {_simple(c) for c in link["classes"]}
        glue_cme = any(c.endswith("ConcurrentModificationException") and ".glue." in c for c in link["classes"])
        message = link.get("message") or ""
        if names & _TRANSIENT_CLASSES or glue_cme or any(t in message for t in _TRANSIENT_TOKENS) or _TRANSIENT_STATUS.search(message):
            return True
    return False


def _java_links(throwable, limit: int = 20) -> list[dict]:
    """A Java throwable (through Py4J) and its causes: class, superclasses and message."""
    links = []
    seen = 0
    while throwable is not None and seen < limit:
        seen += 1
        try:
            classes = []
            cls = throwable.getClass()
            while cls is not None:
                classes.append(cls.getName())
                cls = cls.getSuperclass()
            message = throwable.getMessage()
            links.append({"classes": classes, "message": str(message) if message is not None else ""})
            throwable = throwable.getCause()
        except Exception:  # noqa: BLE001 - a dead gateway: classify what was read
            break
    return links


def error_chain(error: BaseException) -> list[dict]:
    """An exception as `error_is_transient` reads it: each Python exception of the chain
    (`__cause__`, `__context__`) with its classes and message, then the Java exception behind
    a PySpark error (`_origin`) or a Py4J error (`java_exception`) with its causes."""
    chain = []
    seen = set()
    e = error
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        link = {"classes": [c.__name__ for c in type(e).__mro__], "message": getattr(e, "desc", None) or str(e)}
        if isinstance(getattr(e, "transient", None), bool):
            link["transient"] = e.transient
        chain.append(link)
        java = getattr(e, "_origin", None) or getattr(e, "java_exception", None)
        if java is not None:
            chain.extend(_java_links(java))
        e = e.__cause__ or e.__context__
    return chain


def retry_waits(retries: int, backoff_seconds: float) -> list[float]:
    """The wait before each retry, as the local engine's (mesh-core's dag): the backoff, then
    twice as long each time."""
    return [backoff_seconds * (1 << min(i, 16)) for i in range(retries)]


def retry_settings(args: dict[str, str], spec: dict) -> tuple[int, float]:
    """(retries, first wait in seconds) of this run: the pipeline step's, passed by the state
    machine as `--mesh-retries` and `--mesh-retry-backoff-seconds`; without them (a run started
    by hand) the job's `glue.max_retries` from the manifest and a 30 s backoff."""
    def number(key: str, default, kind):
        text = args.get(key)
        if text is None:
            return default
        try:
            value = kind(text)
        except ValueError:
            value = -1
        if value < 0:
            raise JobFailed(f"--{key} must be a number of at least 0, not {text!r} (the state machine passes the step's retry settings)")
        return value

    retries = number(RETRIES_ARG, int(spec.get("glue", {}).get("max_retries", 0)), int)
    backoff = number(RETRY_BACKOFF_ARG, DEFAULT_RETRY_BACKOFF_SECONDS, float)
    return retries, backoff


def run_with_retries(attempt_fn, retries: int, backoff_seconds: float, on_retry=None, sleep=time.sleep):
    """Calls `attempt_fn(attempt)` until it returns; a transient error is retried at most
    `retries` times after the `retry_waits`, any other error (or the last one) is raised.
    `on_retry(attempt, error, wait)` runs before each wait. Returns (result, attempts)."""
    waits = retry_waits(retries, backoff_seconds)
    attempt = 1
    while True:
        try:
            return attempt_fn(attempt), attempt
        except Exception as e:  # noqa: BLE001 - classified, then raised unless transient
            if attempt > retries or not error_is_transient(error_chain(e)):
                raise
            wait = waits[attempt - 1]
            if on_retry is not None:
                on_retry(attempt, e, wait)
            sleep(wait)
            attempt += 1


def main(argv: list[str], catalog: dict[str, str] | None = None, sleep=time.sleep) -> int:
    """The Glue job's entry point. `catalog`, as in `iceberg_conf`, and `sleep` (the waits
    between attempts) are for local tests only.

    Transient errors are retried here (`run_with_retries`, the step's retry settings from
    `retry_settings`); any other error, or the last transient one, fails the Glue run, which is
    then final: nothing reruns a run that failed."""
    spec_uri, overrides = parse_args(argv)
    from pyspark.sql import SparkSession

    bootstrap = SparkSession.builder.getOrCreate()
    spec = load_spec(read_text(bootstrap, spec_uri))
    spark = spark_session(spec, catalog)
    # Glue passes its run id; outside Glue a fresh one keeps quarantine folders apart.
    pairs = dict(_pairs(argv))
    run_id = pairs.get("JOB_RUN_ID") or uuid.uuid4().hex
    params = run_params(spec, overrides, run_id)
    retries, backoff = retry_settings(pairs, spec)

    def attempt(n: int):
        if spec.get("kind") == "maintenance":
            return run_maintenance(spark, spec, run_id)
        # A byte-order mark (Windows editors) is not SQL, as in mesh run.
        return run(spark, spec, read_text(spark, spec["sql"]["uri"]).lstrip("\ufeff"), params, run_id)

    def retrying(n: int, error: BaseException, wait: float) -> None:
        log("attempt failed", spec, run_id, level="warn", attempt=n, retries=retries, transient=True,
            retry_in_seconds=wait, error=str(error)[:4000])
        try:
            spark.catalog.clearCache()  # the failed attempt's cached result
        except Exception:  # noqa: BLE001 - a cache that cannot be cleared is only memory
            pass

    try:
        run_with_retries(attempt, retries, backoff, retrying, sleep)
    except Exception as e:  # noqa: BLE001 - logged, then raised: the Glue run fails
        log("job failed", spec, run_id, level="error", error=str(e)[:4000],
            transient=error_is_transient(error_chain(e)), retries=retries)
        raise
    return 0


def _pairs(argv: list[str]):
    for i, a in enumerate(argv[:-1]):
        if a.startswith("--"):
            yield a[2:], argv[i + 1]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
