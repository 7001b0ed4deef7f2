"""Deploys one state machine to a (fault-injecting) moto server, as Terraform would (its Glue jobs
and alert topic), runs one execution to its end and prints what happened as one JSON object:
status, error, cause, the states entered in order, the number of runs of each Glue job, every
failed task (state, error), the alert's subject and message as published, and `steps` (the
outcomes the execution recorded, from its last state's output).

Usage: run_execution.py ENDPOINT ACCOUNT REGION ASL_FILE
"""
import json
import sys
import time
import urllib.request

import boto3

endpoint, account, region, asl = sys.argv[1:5]
kw = dict(endpoint_url=endpoint, region_name=region, aws_access_key_id="test", aws_secret_access_key="test")
urllib.request.urlopen(urllib.request.Request(
    f"{endpoint}/moto-api/config", data=json.dumps({"stepfunctions": {"execute_state_machine": True}}).encode(),
    method="POST", headers={"Content-Type": "application/json"}))
sfn = boto3.client("stepfunctions", **kw)
glue = boto3.client("glue", **kw)
sns = boto3.client("sns", **kw)
defn = json.load(open(asl))


def walk(states):
    for name, s in states.items():
        yield name, s
        for b in s.get("Branches", []):
            yield from walk(b["States"])


jobs = sorted({s["Parameters"]["JobName"] for _, s in walk(defn["States"]) if "JobName" in s.get("Parameters", {})})
for j in jobs:
    glue.create_job(Name=j, Role=f"arn:aws:iam::{account}:role/test", Command={"Name": "glueetl", "ScriptLocation": "s3://x/y.py"})
for _, s in walk(defn["States"]):
    if "TopicArn" in s.get("Parameters", {}):
        sns.create_topic(Name=s["Parameters"]["TopicArn"].rsplit(":", 1)[1])
arn = sfn.create_state_machine(name="machine", definition=json.dumps(defn), roleArn=f"arn:aws:iam::{account}:role/sfn")["stateMachineArn"]
ex = sfn.start_execution(stateMachineArn=arn, input=json.dumps({"scheduled_time": "2026-11-27T06:00:00Z"}))["executionArn"]
deadline = time.time() + 120
while True:
    d = sfn.describe_execution(executionArn=ex)
    if d["status"] != "RUNNING" or time.time() > deadline:
        break
    time.sleep(0.3)
history = []
kwargs = {"executionArn": ex, "maxResults": 1000}
while True:
    page = sfn.get_execution_history(**kwargs)
    history += page["events"]
    if not page.get("nextToken"):
        break
    kwargs["nextToken"] = page["nextToken"]
by_id = {e["id"]: e for e in history}


def state_of(e):
    """The state an event belongs to: the nearest StateEntered before it."""
    while e is not None:
        if "stateEnteredEventDetails" in e:
            return e["stateEnteredEventDetails"]["name"]
        e = by_id.get(e.get("previousEventId"))
    return None


entered = [e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e]
task_failures = [
    {"state": state_of(e), "error": e["taskFailedEventDetails"].get("error")}
    for e in history if e["type"] == "TaskFailed"
]
alert = None
for e in history:
    det = e.get("taskScheduledEventDetails")
    if det and det.get("resource") == "publish":
        alert = json.loads(det["parameters"])
published = any(e["type"] == "TaskSucceeded" and e.get("taskSucceededEventDetails", {}).get("resource") == "publish" for e in history)
exited = [e["stateExitedEventDetails"] for e in history if "stateExitedEventDetails" in e]
steps = None
for x in exited:
    out = json.loads(x.get("output") or "{}")
    if isinstance(out, dict) and "steps" in out:
        steps = out["steps"]
print(json.dumps({
    "status": d["status"],
    "error": d.get("error"),
    "cause": d.get("cause"),
    "entered": entered,
    "runs": {j: len(glue.get_job_runs(JobName=j)["JobRuns"]) for j in jobs},
    "task_failures": task_failures,
    "alert": alert,
    "alert_published": published,
    "steps": steps,
}, default=str))
