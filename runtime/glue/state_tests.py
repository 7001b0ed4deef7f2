"""Job state on Spark 3.5 + Iceberg 1.10 (what Glue 5.1 runs), driven by
crates/mesh-core/tests/glue_state.rs:

    python state_tests.py PHASE MANIFEST

Phases (each one Spark session over the same Hadoop-catalog warehouse; the Rust test runs
meshkit between them):

- `runner`: the runner alone. An incremental append job, then `rewrite_data_files` (no state in
  its snapshot) and `expire_snapshots(retain_last => 1, older_than => now)`, then a run with no
  new files: nothing read, nothing duplicated (the `mesh-state` tag kept the state). Without the
  tag the same history is an error naming the table and the restore, never a re-read; the table
  property restores it. Two runs racing (the second commits in the middle of the first, through
  the runner's `BEFORE_PUBLISH` hook): each input file is committed once, the loser fails with a
  transient `StateConflict` and its retry reads nothing; on an empty table and on a table with
  history. Then meshkit commits in the middle of a runner run (the hook runs meshkit, through
  the Rust test binary): the runner loses the same way.
- `spark_maintains`: meshkit's table (written by `mesh run`) compacted and expired by Spark.
- `runner_after_meshkit`: the runner continues a table it wrote and meshkit then maintained.

Prints `ok   <case>: <detail>` per case and exits 1 on the first failure.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import shutil
import subprocess
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import glue_runner as gr  # noqa: E402
from iceberg_tests import create_like_terraform, hadoop_catalog, session  # noqa: E402


class Runner:
    def __init__(self, spark, manifest: dict):
        self.spark, self.m = spark, manifest
        self.catalog = hadoop_catalog(manifest)
        with open(manifest["spec"]) as f:
            self.spec = json.load(f)
        self.key = manifest["bookmark_key"]
        self.work = os.path.join(manifest["workdir"], "state-runs")
        os.makedirs(self.work, exist_ok=True)

    def spec_for(self, table: str, raw_state: str, retries: int = 0) -> dict:
        s = copy.deepcopy(self.spec)
        # A lost race shows as the run's error unless a case lets the runner retry it.
        s.setdefault("glue", {})["max_retries"] = retries
        s["output"]["table"] = table
        s["inputs"][0]["location"] = self.m["raw_states"][raw_state]
        return s

    def target(self, table: str) -> str:
        return gr.target_name(self.spec_for(table, "1"))

    def run(self, table: str, raw_state: str, run_id: str, retries: int = 0):
        """The runner's real entry point; (error or None, log events). Its waits between
        attempts are skipped."""
        path = os.path.join(self.work, f"{run_id}.json")
        with open(path, "w") as f:
            json.dump(self.spec_for(table, raw_state, retries), f)
        logs, error = io.StringIO(), None
        with contextlib.redirect_stderr(logs):
            try:
                assert gr.main(["--job-spec", path, "--JOB_RUN_ID", run_id], catalog=self.catalog, sleep=lambda s: None) == 0
            except gr.JobFailed as e:
                error = e
        events = [json.loads(line) for line in logs.getvalue().splitlines() if line.startswith("{")]
        return error, events

    def ok_run(self, table: str, raw_state: str, run_id: str) -> int:
        error, events = self.run(table, raw_state, run_id)
        assert error is None, f"{run_id}: {error}"
        return files_read(events)

    def ids(self, table: str) -> list[int]:
        return sorted(r[0] for r in self.spark.sql(f"SELECT id FROM {self.target(table)}").collect())

    def snapshots(self, table: str) -> list[tuple[int, str, dict]]:
        rows = self.spark.sql(f"SELECT snapshot_id, operation, summary FROM {self.target(table)}.snapshots ORDER BY committed_at").collect()
        return [(r[0], r[1], dict(r[2] or {})) for r in rows]

    def refs(self, table: str) -> dict[str, tuple[str, int]]:
        return {r[0]: (r[1], r[2]) for r in self.spark.sql(f"SELECT name, type, snapshot_id FROM {self.target(table)}.refs").collect()}

    def state(self, table: str) -> str | None:
        t = self.target(table)
        snaps, current = gr.table_snapshots(self.spark, t)
        props = {r[0]: r[1] for r in self.spark.sql(f"SHOW TBLPROPERTIES {t}").collect()}
        return gr.find_state(snaps, current, gr.state_tag(self.spark, t), props, self.key)

    def compact_and_expire(self, table: str) -> None:
        """Spark's maintenance as Glue or the runner run it: every file rewritten (a `replace`
        snapshot without job state), then everything expired but the newest snapshot."""
        t = self.target(table)
        name = gr.literal(t.split(".", 1)[1].replace("`", ""))
        cat = t.split(".", 1)[0]
        before = {s[0] for s in self.snapshots(table)}
        self.spark.sql(f"CALL {cat}.system.rewrite_data_files(table => {name}, options => map('rewrite-all', 'true'))").collect()
        new = [s for s in self.snapshots(table) if s[0] not in before]
        assert [s[1] for s in new] == ["replace"], new
        assert not any(k.startswith(gr.STATE_PREFIX) for k in new[0][2]), f"the rewrite carried state: {new[0][2]}"
        now = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(time.time() + 1))
        self.spark.sql(f"CALL {cat}.system.expire_snapshots(table => {name}, older_than => TIMESTAMP '{now}', retain_last => 1)").collect()

    def metadata_file(self, table: str) -> str:
        meta = os.path.join(self.m["workdir"], "warehouse", self.spec["output"]["database"], table, "metadata")
        with open(os.path.join(meta, "version-hint.text")) as f:
            return os.path.join(meta, f"v{f.read().strip()}.metadata.json")

    def adopt(self, table: str, metadata: str) -> None:
        """A table another engine wrote, laid out for the Hadoop catalog under `table`."""
        meta = os.path.join(self.m["workdir"], "warehouse", self.spec["output"]["database"], table, "metadata")
        os.makedirs(meta, exist_ok=True)
        shutil.copy(metadata.removeprefix("file://"), os.path.join(meta, "v1.metadata.json"))
        with open(os.path.join(meta, "version-hint.text"), "w") as f:
            f.write("1")


def files_read(events: list[dict]) -> int:
    read = [e["files_read"] for e in events if e["event"] == "incremental input"]
    assert len(read) == 1, events
    return read[0]


def runner_phase(r: Runner) -> list[tuple[str, object]]:
    per_state = r.m["ids"]  # raw state -> every id in its files

    def acceptance() -> str:
        table = "st_accept"
        create_like_terraform(r.spark, r.spec_for(table, "1"))
        assert r.ok_run(table, "1", "accept-1") == 2
        assert r.ids(table) == per_state["1"]
        # The first commit through a branch leaves one snapshot, as a direct write would.
        assert [s[1] for s in r.snapshots(table)] == ["append"], r.snapshots(table)
        job_snapshot = r.snapshots(table)[-1]
        assert r.refs(table)[gr.STATE_TAG] == ("TAG", job_snapshot[0]), r.refs(table)
        r.compact_and_expire(table)
        kept = {s[0] for s in r.snapshots(table)}
        assert job_snapshot[0] in kept and len(kept) == 2, f"expiry kept {kept}; the tagged snapshot is {job_snapshot[0]}"
        before = r.snapshots(table)
        assert r.ok_run(table, "1", "accept-2") == 0, "a run with no new files read files after maintenance"
        assert r.ids(table) == per_state["1"], "rows duplicated after maintenance"
        assert r.snapshots(table) == before, "a run with nothing new committed"
        assert r.ok_run(table, "2", "accept-3") == 2
        assert r.ids(table) == per_state["2"]
        return f"{len(per_state['2'])} rows once each; the tagged job snapshot outlived rewrite_data_files + expire_snapshots(retain_last => 1)"

    def lost_then_restored() -> str:
        # A table whose state-holding snapshot expired with no tag (what the runner left before
        # the tag existed): an error naming the table and the restore, nothing read.
        table = "st_lost"
        create_like_terraform(r.spark, r.spec_for(table, "1"))
        assert r.ok_run(table, "1", "lost-1") == 2
        bookmark = r.state(table)
        t = r.target(table)
        r.spark.sql(f"ALTER TABLE {t} DROP TAG `{gr.STATE_TAG}`")
        r.compact_and_expire(table)
        assert len(r.snapshots(table)) == 1
        error, events = r.run(table, "1", "lost-2")
        message = str(error)
        assert error is not None and not isinstance(error, gr.StateConflict), f"no error: {events}"
        assert "has history but no findable job state" in message and r.spec["output"]["reference"] in message, message
        assert f"SET TBLPROPERTIES ('{r.key}'" in message, message
        assert not [e for e in events if e["event"] == "incremental input"], "the run read input before failing"
        assert r.ids(table) == per_state["1"]
        # meshkit must refuse the same history (glue_state.rs runs it on this metadata).
        with open(r.m["lost_handoff"], "w") as f:
            json.dump({"metadata": r.metadata_file(table)}, f)
        # Restored from the last `job committed` value as the table property.
        r.spark.sql(f"ALTER TABLE {t} SET TBLPROPERTIES ({gr.literal(r.key)} = {gr.literal(bookmark)})")
        assert r.ok_run(table, "1", "lost-3") == 0
        assert r.ok_run(table, "2", "lost-4") == 2
        assert r.ids(table) == per_state["2"]
        assert r.refs(table)[gr.STATE_TAG][1] == r.snapshots(table)[-1][0]
        return message.splitlines()[0]

    def race(table: str, first_state: str | None, label: str) -> str:
        create_like_terraform(r.spark, r.spec_for(table, "1"))
        if first_state:
            assert r.ok_run(table, first_state, f"{label}-0") == 2
            first_commit = r.metadata_file(table)
        inner = {}

        def competitor(branch: str) -> None:
            gr.BEFORE_PUBLISH = None
            inner["error"], inner["events"] = r.run(table, "2", f"{label}-b")
            inner["branch"] = branch

        gr.BEFORE_PUBLISH = competitor
        try:
            error, events = r.run(table, "2", f"{label}-a")
        finally:
            gr.BEFORE_PUBLISH = None
        assert inner.get("error") is None, f"the competing run failed: {inner.get('error')}"
        new_files = 4 if first_state is None else 2
        assert files_read(inner["events"]) == new_files and files_read(events) == new_files, (inner["events"], events)
        assert isinstance(error, gr.StateConflict) and error.transient, f"the racing run did not lose: {error!r}"
        assert "nothing was committed" in str(error) and "Transient" in str(error), str(error)
        assert r.ids(table) == per_state["2"], f"input committed twice: {r.ids(table)}"
        assert set(r.refs(table)) == {"main", gr.STATE_TAG}, f"branches left behind: {r.refs(table)}"
        before = r.snapshots(table)
        assert r.ok_run(table, "2", f"{label}-a-retry") == 0, "the retry read input the winner had committed"
        assert r.snapshots(table) == before and r.ids(table) == per_state["2"]
        if first_state:
            # For meshkit to lose against the runner (glue_state.rs): the table at the first
            # run's commit, and after the winner's.
            with open(r.m["race_handoff"], "w") as f:
                json.dump({"before": first_commit, "after": r.metadata_file(table)}, f)
        return f"the winner read {new_files} files, the loser failed ({str(error).split(';')[0]}), its retry read 0"

    def meshkit_in_the_middle() -> str:
        # The runner reads its state, then meshkit commits the same job to the same table (the
        # Rust test binary, as `mesh run` would, on the table's latest metadata), then the runner
        # publishes: it must lose.
        table = "st_cross"
        create_like_terraform(r.spark, r.spec_for(table, "1"))
        assert r.ok_run(table, "1", "cross-0") == 2
        done = {}

        def meshkit(branch: str) -> None:
            gr.BEFORE_PUBLISH = None
            step = dict(r.m["meshkit_step"], metadata=r.metadata_file(table))
            env = dict(os.environ, MESH_STATE_STEP=json.dumps(step))
            out = subprocess.run([r.m["test_binary"], "--exact", "meshkit_step", "--ignored", "--nocapture"], env=env, capture_output=True, text=True)
            assert out.returncode == 0, out.stdout + out.stderr
            with open(step["result"]) as f:
                done.update(json.load(f))
            # The shared catalog now points at meshkit's commit (as Glue's would).
            meta = os.path.dirname(r.metadata_file(table))
            with open(os.path.join(meta, "version-hint.text")) as f:
                version = int(f.read().strip()) + 1
            shutil.copy(done["metadata"].removeprefix("file://"), os.path.join(meta, f"v{version}.metadata.json"))
            with open(os.path.join(meta, "version-hint.text"), "w") as f:
                f.write(str(version))

        gr.BEFORE_PUBLISH = meshkit
        try:
            # With one retry allowed, as a pipeline step with `retries = 1` runs it: the lost race
            # is transient, and the second attempt reads the state meshkit committed.
            error, events = r.run(table, "2", "cross-a", retries=1)
        finally:
            gr.BEFORE_PUBLISH = None
        assert done.get("files_read") == 2, done
        assert error is None, f"the runner's retry failed: {error}"
        failed = [e for e in events if e["event"] == "attempt failed"]
        assert len(failed) == 1 and "changed after this run read its state" in failed[0]["error"], failed
        read = [e["files_read"] for e in events if e["event"] == "incremental input"]
        assert read == [2, 0], f"files read per attempt: {read}"
        assert r.ids(table) == per_state["2"], f"input committed twice: {r.ids(table)}"
        # The state meshkit wrote is what the runner reads: one rule, one tag.
        assert r.state(table) == done["bookmark"], (r.state(table), done["bookmark"])
        assert r.refs(table)[gr.STATE_TAG][1] == done["snapshot_id"], r.refs(table)
        # Hand the runner's table over for the reverse race (meshkit loses to the runner).
        with open(r.m["cross_handoff"], "w") as f:
            json.dump({"metadata": r.metadata_file(table)}, f)
        return "meshkit committed 2 files in the middle of the runner's run; the runner's attempt lost, its own retry read 0"

    def same_rule() -> str:
        # mesh_iceberg::job_state's unit cases (state.rs), through the runner's find_state.
        k = "mesh.state.j.k"

        def snaps(*rows):
            return [{"snapshot_id": i, "parent_id": p, "timestamp_ms": ts, "summary": ({k: v} if v else {})} for i, p, ts, v in rows]

        def lost(fn) -> str:
            try:
                fn()
            except gr.StateLost as e:
                return str(e)
            raise AssertionError("no StateLost")

        chain = snaps((1, None, 10, "b1"), (2, 1, 20, None), (3, 2, 30, None))
        assert gr.find_state(chain, 3, None, {}, k) == "b1"
        assert gr.find_state(chain, 3, None, {}, "mesh.state.other.k") is None
        cut = snaps((1, None, 10, "b1"), (3, 2, 30, None))
        assert gr.find_state(cut, 3, 1, {}, k) == "b1"
        assert gr.inherited_state(cut, 3, 1, {}) == {k: "b1"}
        assert gr.find_state(cut, 3, 1, {}, "mesh.state.other.k") is None
        alone = snaps((3, 2, 30, None))
        assert "has expired and no snapshot is tagged" in lost(lambda: gr.find_state(alone, 3, None, {}, k))
        assert gr.find_state(alone, 3, None, {k: "b0"}, k) == "b0"
        assert gr.find_state(alone, 3, None, {k: ""}, k) is None
        tagged_here = snaps((1, None, 10, "b1"))
        assert gr.find_state(tagged_here, 1, 1, {k: "stale"}, k) == "b1"
        rolled = snaps((1, None, 10, None), (2, 1, 20, "b2"))
        assert "rolled back" in lost(lambda: gr.find_state(rolled, 1, 2, {}, k))
        rolled_cut = snaps((2, 1, 20, "b2"), (5, 4, 15, None))
        assert "rolled back" in lost(lambda: gr.find_state(rolled_cut, 5, 2, {}, k))
        assert gr.find_state([], None, None, {}, k) is None
        return "ancestry, tag after expiry, lost without a tag, table-property restore, rollback"

    return [
        ("runner find_state is mesh_iceberg::job_state's rule", same_rule),
        ("runner incremental append, rewrite_data_files + expire_snapshots(retain_last => 1), a run with nothing new", acceptance),
        ("runner state lost without the tag is an error naming the table; the table property restores it", lost_then_restored),
        ("runner two runs racing on an empty table commit each file once", lambda: race("st_race0", None, "race0")),
        ("runner two runs racing on a table with history commit each file once", lambda: race("st_race1", "1", "race1")),
        ("runner against meshkit: meshkit commits in the middle of a runner run", meshkit_in_the_middle),
    ]


def spark_maintains_phase(r: Runner) -> list[tuple[str, object]]:
    def maintain() -> str:
        table = "st_mk"
        r.adopt(table, r.m["meshkit_table"])
        before = r.snapshots(table)
        assert r.refs(table).get(gr.STATE_TAG, ("", None))[1] == before[-1][0], "meshkit's commit is not tagged"
        # Two maintenance days: the second replace's parent (the first) expires, so the history
        # back to meshkit's commit is cut and only the tag finds the state.
        r.compact_and_expire(table)
        r.compact_and_expire(table)
        kept = r.snapshots(table)
        assert before[-1][0] in {s[0] for s in kept} and len(kept) == 2, kept
        with open(r.m["spark_maintained"], "w") as f:
            json.dump({"metadata": r.metadata_file(table)}, f)
        return f"{len(before)} snapshots -> {len(kept)} (the replace and meshkit's tagged commit)"

    def runner_writes() -> str:
        table = "st_rev"
        create_like_terraform(r.spark, r.spec_for(table, "1"))
        assert r.ok_run(table, "1", "rev-1") == 2
        with open(r.m["runner_written"], "w") as f:
            json.dump({"metadata": r.metadata_file(table)}, f)
        return "the runner's table handed to meshkit for maintenance"

    return [("spark maintains meshkit's table", maintain), ("spark writes a table for meshkit to maintain", runner_writes)]


def runner_after_meshkit_phase(r: Runner) -> list[tuple[str, object]]:
    def continue_() -> str:
        table = "st_rev_mk"
        r.adopt(table, r.m["meshkit_maintained"])
        before = r.snapshots(table)
        assert r.ok_run(table, "1", "rev-2") == 0, "the runner re-read input after meshkit's maintenance"
        assert r.ids(table) == r.m["ids"]["1"] and r.snapshots(table) == before
        assert r.ok_run(table, "2", "rev-3") == 2
        assert r.ids(table) == r.m["ids"]["2"]
        return "nothing read after meshkit's compaction and expiry; the next files read once"

    return [("runner continues after meshkit maintained its table", continue_)]


PHASES = {"runner": runner_phase, "spark_maintains": spark_maintains_phase, "runner_after_meshkit": runner_after_meshkit_phase}


def main(phase: str, path: str) -> int:
    with open(path) as f:
        manifest = json.load(f)
    spark = session(manifest)
    r = Runner(spark, manifest)
    for name, fn in [case for p in phase.split(",") for case in PHASES[p](r)]:
        try:
            detail = fn()
        except Exception:  # noqa: BLE001 - reported with its traceback
            print(f"FAIL {name}\n{traceback.format_exc()}")
            return 1
        print(f"ok   {name}: {detail}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
