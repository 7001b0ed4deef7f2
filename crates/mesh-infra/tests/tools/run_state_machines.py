"""Runs rendered state machines on a (patched) moto server: every pipeline must reach SUCCEEDED
with its Glue jobs present, and a pipeline whose first Glue job is missing must go through
Catch -> SNS alert -> Fail. Prints one line per execution; exits 1 on any mismatch.

Usage: run_state_machines.py ENDPOINT ACCOUNT REGION STATES_DIR
"""
import json
import sys
import time
import urllib.request
from pathlib import Path

import boto3

endpoint, account, region, states_dir = sys.argv[1:5]
kw = dict(endpoint_url=endpoint, region_name=region, aws_access_key_id="test", aws_secret_access_key="test")
# Plain moto only records executions; this makes it run them.
urllib.request.urlopen(urllib.request.Request(
    f"{endpoint}/moto-api/config", data=json.dumps({"stepfunctions": {"execute_state_machine": True}}).encode(),
    method="POST", headers={"Content-Type": "application/json"}))
sfn = boto3.client("stepfunctions", **kw)
glue = boto3.client("glue", **kw)
sns = boto3.client("sns", **kw)
failures = []


def walk(states):
    for name, s in states.items():
        yield name, s
        for b in s.get("Branches", []):
            yield from walk(b["States"])


def jobs_and_topics(defn):
    jobs, topics = [], []
    for _, s in walk(defn["States"]):
        p = s.get("Parameters", {})
        if "JobName" in p:
            jobs.append(p["JobName"])
        if "TopicArn" in p:
            topics.append(p["TopicArn"])
    return jobs, topics


def run(name, defn, expect, skip_job=None):
    jobs, topics = jobs_and_topics(defn)
    for t in topics:
        sns.create_topic(Name=t.rsplit(":", 1)[1])
    for j in jobs:
        if j == skip_job:
            glue.delete_job(JobName=j)
            continue
        try:
            glue.get_job(JobName=j)
        except glue.exceptions.EntityNotFoundException:
            glue.create_job(Name=j, Role=f"arn:aws:iam::{account}:role/test", Command={"Name": "glueetl", "ScriptLocation": "s3://x/y.py"})
    sm_name = name + ("-missing-job" if skip_job else "")
    arn = sfn.create_state_machine(name=sm_name, definition=json.dumps(defn), roleArn=f"arn:aws:iam::{account}:role/sfn")["stateMachineArn"]
    ex = sfn.start_execution(stateMachineArn=arn, input=json.dumps({"scheduled_time": "2026-11-27T06:00:00Z"}))["executionArn"]
    deadline = time.time() + 120
    while True:
        d = sfn.describe_execution(executionArn=ex)
        if d["status"] != "RUNNING" or time.time() > deadline:
            break
        time.sleep(0.5)
    history = sfn.get_execution_history(executionArn=ex, maxResults=1000)["events"]
    entered = [e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e]
    ok = d["status"] == expect
    detail = ""
    if expect == "FAILED":
        ok = ok and "Notify failure" in entered and d.get("error") == "PipelineFailed"
        # The alert was really published: the SNS task after `Notify failure` succeeded.
        start = next(i for i, e in enumerate(history) if e.get("stateEnteredEventDetails", {}).get("name") == "Notify failure") if "Notify failure" in entered else len(history)
        published = any(e["type"] == "TaskSucceeded" and e.get("taskSucceededEventDetails", {}).get("resource") == "publish" for e in history[start:])
        ok = ok and published
        detail = f" error={d.get('error')} via {' -> '.join(entered[-3:])}, alert published={published}"
    else:
        # Every job step ran and received the run date of the scheduled time; every optimize
        # step ran the project's maintenance job on its table's maintenance spec.
        for j in jobs:
            runs = glue.get_job_runs(JobName=j)["JobRuns"]
            args = runs[-1].get("Arguments", {}) if runs else {}
            if "-maintenance-" in j:
                spec = args.get("--job-spec", "")
                if not (spec.startswith("s3://") and "/maintenance/" in spec and spec.endswith(".json")):
                    ok = False
                    detail += f" {j}: --job-spec={spec!r}"
            elif args.get("--run_date") != "2026-11-27":
                ok = False
                detail += f" {j}: --run_date={args.get('--run_date')!r}"
    print(f"{'ok' if ok else 'FAIL'} {sm_name}: {d['status']} (expected {expect}){detail}; states: {', '.join(entered)}")
    if not ok:
        failures.append(sm_name)


files = sorted(Path(states_dir).glob("*.asl.json"))
if not files:
    sys.exit(f"no state machines in {states_dir}")
for f in files:
    run(f.name.removesuffix(".asl.json"), json.loads(f.read_text()), "SUCCEEDED")
first = json.loads(files[0].read_text())
missing = jobs_and_topics(first)[0][0]
run(files[0].name.removesuffix(".asl.json"), first, "FAILED", skip_job=missing)
sys.exit(1 if failures else 0)
