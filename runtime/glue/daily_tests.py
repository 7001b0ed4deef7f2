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
    bookmark = gr.parse_bookmark(None)
    for i, step in enumerate(m["bookmark_runs"]):
        new = gr.select_new_files(bookmark, step["listed"])
        same(f"run {i} new files", new, step["new"])
        bookmark = gr.advance_bookmark(bookmark, new)
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

    plain = {"job": "j", "write": {"mode": "append"}}
    same("plain jobs run", gr.daily_support_error(plain), None)
    incremental = {"bookmarks": {"raw.t": "k"}, "on_rewrite": "error"}
    same("an incremental merge runs (in full)", gr.daily_support_error({**plain, "write": {"mode": "merge"}, "incremental": incremental}), None)
    refused = gr.daily_support_error({**plain, "incremental": incremental}) or ""
    same("an incremental append is refused", "incremental append job" in refused and "mesh run" in refused, True)
    refused = gr.daily_support_error({**plain, "write": {"mode": "overwrite"}, "time_range": spec["time_range"]}) or ""
    same("a time-range job is refused", "time-range job" in refused, True)


    for line in bad:
        print(line)
    print(f"{n - len(bad)} of {n} agree")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
