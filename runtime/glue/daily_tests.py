"""The Glue runner's daily-operation functions against the Rust runtime's, driven by
crates/mesh-core/tests/glue_daily.rs: the manifest holds inputs and what meshkit computed for
them (bookmarks, intervals, predicates, done sets); this prints one line per mismatch and exits 1
if there is any.

    python daily_tests.py MANIFEST
"""

from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import glue_runner as gr  # noqa: E402


def main(path: str) -> int:
    m = json.load(open(path))
    bad, n = [], 0

    def same(what, got, want):
        nonlocal n
        n += 1
        if got != want:
            bad.append(f"{what}: runner {got!r} != meshkit {want!r}")

    # Bookmarks: the same files selected, the same bookmark bytes after each run.
    # A processed file that changed is refused with meshkit's reason, naming the file; the
    # bookmark then stays as it was.
    bookmark = gr.parse_bookmark(None)
    for i, step in enumerate(m["bookmark_runs"]):
        try:
            new = gr.select_new_files(bookmark, step["listed"])
        except gr.JobFailed as e:
            same(f"run {i} refused", str(e), f"{step.get('refused')}: {step.get('reason')}")
            same(f"run {i} bookmark kept", gr.encode_bookmark(bookmark), step["bookmark"])
            continue
        same(f"run {i} refused", None, step.get("refused"))
        same(f"run {i} new files", new, step["new"])
        bookmark = gr.advance_bookmark(bookmark, new, step["run_ms"])
        same(f"run {i} bookmark", gr.encode_bookmark(bookmark), step["bookmark"])
        bookmark = gr.parse_bookmark(step["bookmark"])

    for c in m["intervals"]:
        start, end = gr.interval(c["grain"], c["at"])
        same(f"{c['grain']} {c['at']} label", gr.interval_label(c["grain"], start), c["label"])
        same(f"{c['grain']} {c['at']} params", gr.interval_params(c["grain"], start, end), c["params"])
        same(f"{c['grain']} {c['at']} predicate", gr.interval_predicate(c["column"], c["column_type"], start, end), c["predicate"])

    for c in m["done"]:
        parsed = gr.parse_done(c["grain"], c["encoded"])
        same(f"done {c['encoded']} count", len(parsed), c["count"])
        same(f"done {c['encoded']} round trip", gr.encode_done(c["grain"], parsed), c["encoded"])
        with_one = gr.encode_done(c["grain"], parsed | {c["add"]})
        same(f"done {c['encoded']} + {c['add']}", with_one, c["after_add"])

    # The bookmark is found on the current snapshot or its nearest ancestor (Spark compaction
    # does not carry it forward).
    snaps = [
        {"snapshot_id": 1, "parent_id": None, "summary": {"k": "a"}},
        {"snapshot_id": 2, "parent_id": 1, "summary": {"k": "b"}},
        {"snapshot_id": 3, "parent_id": 2, "summary": {"operation": "replace"}},
        {"snapshot_id": 4, "parent_id": 1, "summary": {"k": "rolled back"}},
    ]
    same("latest property via ancestor", gr.latest_property(snaps, 3, "k"), "b")
    same("latest property on a rolled-back branch", gr.latest_property(snaps, 4, "k"), "rolled back")
    same("no property", gr.latest_property(snaps, 3, "other"), None)
    same("snapshot options", gr.snapshot_property_options({"mesh.state.j.intervals": "2026-11-01"}), {"snapshot-property.mesh.state.j.intervals": "2026-11-01"})

    spec = m["time_range_spec"]
    start, end = gr.interval(spec["time_range"]["grain"], "2026-11-02")
    stmt = gr.interval_write_statements(spec, start, end)[0]
    same("interval write", stmt, m["interval_write"])

    # Specs the runner refuses (mesh validate refuses their manifests) and those it runs.
    inputs = [{"reference": "raw.t"}]
    plain = {"job": "j", "write": {"mode": "append"}, "inputs": inputs}
    same("plain jobs run", gr.daily_support_error(plain), None)
    incremental = {"bookmarks": {"raw.t": "k"}, "on_rewrite": "error"}
    for mode in ("append", "merge"):
        same(f"an incremental {mode} runs", gr.daily_support_error({**plain, "write": {"mode": mode}, "incremental": incremental}), None)
    refused = gr.daily_support_error({**plain, "write": {"mode": "overwrite"}, "incremental": incremental}) or ""
    same("an incremental overwrite is refused", "incremental with mode `overwrite`" in refused and "mesh build" in refused, True)
    refused = gr.daily_support_error({**plain, "incremental": {**incremental, "bookmarks": {"raw.other": "k"}}}) or ""
    same("a bookmark of another input is refused", "raw.other is not one of its inputs" in refused, True)
    time_range = spec["time_range"]
    same("a time-range overwrite runs", gr.daily_support_error({**plain, "write": {"mode": "overwrite"}, "time_range": time_range}), None)
    refused = gr.daily_support_error({**plain, "write": {"mode": "overwrite_partitions"}, "time_range": time_range}) or ""
    same("a time-range job in another mode is refused", "time-range job with mode `overwrite_partitions`" in refused, True)
    refused = gr.daily_support_error({**plain, "write": {"mode": "overwrite"}, "time_range": time_range, "incremental": incremental}) or ""
    same("incremental and time-range together is refused", "both incremental and time-range" in refused, True)

    # The interval a run binds, as `mesh run` binds it (interval_start, else run_date, else the
    # interval due at the run's time: here the run's time is the interval's end, so it is the
    # latest complete one).
    for c in m["intervals"]:
        tr_spec = {"time_range": {"grain": c["grain"], "column": c["column"], "column_type": c["column_type"]}}
        run_time = gr.interval(c["grain"], c["at"])[1]
        for given in ({"interval_start": c["at"]}, {"run_date": c["at"]}, {}):
            params = dict(given)
            start, end, label, done = gr.bind_interval(tr_spec, params, None, run_time)
            want = dict(c["params"], **({"run_date": c["at"]} if "run_date" in given else {}))
            same(f"{c['grain']} {given} bound params", params, {**given, **want})
            same(f"{c['grain']} {given} label and done set", (label, done), (c["label"], c["label"]))
    params = {"run_date": "2026-11-31"}
    try:
        gr.bind_interval({"time_range": {"grain": "day"}}, params, None, gr.interval("day", "2026-12-02")[0])
        same("an impossible run_date is refused", "accepted", "refused")
    except gr.JobFailed as e:
        same("an impossible run_date names the parameter", "parameter run_date = `2026-11-31` is not a date" in str(e), True)

    # Incremental Iceberg reads: appends and compactions pass, anything else is named.
    chain = [
        {"snapshot_id": 10, "parent_id": None, "operation": "append"},
        {"snapshot_id": 11, "parent_id": 10, "operation": "append"},
        {"snapshot_id": 12, "parent_id": 11, "operation": "replace"},
        {"snapshot_id": 13, "parent_id": 12, "operation": "append"},
        {"snapshot_id": 14, "parent_id": 13, "operation": "overwrite"},
        {"snapshot_id": 15, "parent_id": 14, "operation": "delete"},
    ]
    same("no snapshot", gr.increment_plan([], None, None), ("none",))
    same("first read", gr.increment_plan(chain, 13, None), ("full",))
    same("appends and a compaction since", gr.increment_plan(chain, 13, 10), ("appended",))
    same("nothing since", gr.increment_plan(chain, 13, 13), ("appended",))
    same("a rewrite since", gr.increment_plan(chain, 15, 11), ("rewritten", 14, "overwrite"))
    same("a bookmark not in the history", gr.increment_plan(chain, 15, 99), ("full",))
    same("the rewrite message", gr.rewritten_error("curated.src", 14, "overwrite", 11).splitlines()[0],
         "incremental input curated.src: snapshot 14 (overwrite) rewrote rows after snapshot 11, which this job processed up to; an append-only read would miss or repeat rows")

    same("only changed state is committed", gr.changed_state({"a": "1", "b": "2", "c": "3"}, {"a": "1", "b": None, "c": "4"}), {"b": "2", "c": "3"})
    for root, path, want in [
        ("/lake/t/", "/lake/t/d=1/a.csv", "d=1/a.csv"),
        ("/lake/t", "/lake/t/a.json", "a.json"),
        ("/lake/t", "/lake/t/_SUCCESS", None),
        ("/lake/t", "/lake/t/d=1/.a.csv.crc", None),
        ("/lake/t", "/lake/t/_temporary/0/a.csv", None),
        ("/lake/t", "/lake/tt/a.csv", None),
    ]:
        same(f"relative file {path}", gr.relative_file(root, path), want)
    same("glob characters are escaped", gr.glob_escape("s3://b/t/d=[1]/a{b}*?.csv"), "s3://b/t/d=\\[1\\]/a\\{b\\}\\*\\?.csv")

    for line in bad:
        print(line)
    print(f"{n - len(bad)} of {n} agree")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
