"""Data Factory JSON: valid against the Data Factory schema (tests/data/, vendored), every
reference defined, and in step with the Function App."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.durable_functions import OrchestrationRuntimeStatus
from jsonschema import Draft7Validator

from functions.http_runs import FIELDS, PIPELINES
from tests.test_function_app import FUNCTIONS

ADF = Path(__file__).resolve().parent.parent / "adf"
SCHEMA = json.loads(
    (Path(__file__).parent / "data" / "datafactory-2018-06-01.schema.json").read_text()
)
DEFINITION = {"pipeline": "Pipeline", "trigger": "Trigger", "linkedService": "LinkedService"}
CONTAINERS = ("activities", "ifTrueActivities", "ifFalseActivities")


def _load(kind: str) -> dict[str, dict[str, Any]]:
    docs = {p.stem: json.loads(p.read_text()) for p in sorted((ADF / kind).glob("*.json"))}
    assert docs, f"no {kind} in adf/"
    for stem, doc in docs.items():
        assert doc["name"] == stem, f"adf/{kind}/{stem}.json is named {doc['name']}"
    return docs


PIPELINES_JSON = _load("pipeline")
TRIGGERS = _load("trigger")
LINKED = _load("linkedService")


def _validator(kind: str) -> Draft7Validator:
    """The schema of one `adf/<kind>/*.json` file: a named resource with its properties."""
    resource = {
        "allOf": [{"$ref": "#/definitions/resource"}],
        "properties": {"properties": {"$ref": f"#/definitions/{DEFINITION[kind]}"}},
        "definitions": SCHEMA["definitions"],
    }
    Draft7Validator.check_schema(resource)
    return Draft7Validator(resource)


def _errors(kind: str, doc: Any) -> list[str]:
    return sorted(
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in _validator(kind).iter_errors(doc)
    )


@pytest.mark.parametrize("kind", sorted(DEFINITION))
def test_every_file_validates_against_the_data_factory_schema(kind: str) -> None:
    docs = {"pipeline": PIPELINES_JSON, "trigger": TRIGGERS, "linkedService": LINKED}[kind]
    for name, doc in docs.items():
        assert _errors(kind, doc) == [], f"adf/{kind}/{name}.json"


@pytest.mark.parametrize(
    ("change", "wrong"),
    [
        (lambda p: p["parameters"]["pipeline"].update(type="string"), "parameters/pipeline/type"),
        (lambda p: p["parameters"]["poll_seconds"].update(type="int"), "poll_seconds/type"),
        (lambda p: p["activities"][0].update(type="SetVariables"), "activities/0"),
        (lambda p: p["activities"][1]["typeProperties"].pop("method"), "activities/1"),
        (lambda p: p["activities"][1]["policy"].update(timeout="5 minutes"), "activities/1"),
    ],
)
def test_the_schema_catches_what_the_service_rejects(change: Any, wrong: str) -> None:
    doc = json.loads(json.dumps(PIPELINES_JSON["demandops_run"]))
    change(doc["properties"])
    errors = _errors("pipeline", doc)
    assert errors and any(wrong in e for e in errors), errors


def _scopes(activities: list[dict[str, Any]], outer: frozenset[str]) -> Iterator[Any]:
    """(activities of one scope, names visible from it) for every nested scope."""
    visible = outer | {a["name"] for a in activities}
    yield activities, visible
    for activity in activities:
        for key in CONTAINERS:
            inner = activity.get("typeProperties", {}).get(key)
            if inner:
                yield from _scopes(inner, visible)


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def _own(activity: dict[str, Any]) -> dict[str, Any]:
    """An activity without its nested activities."""
    props = {k: v for k, v in activity.get("typeProperties", {}).items() if k not in CONTAINERS}
    return {**activity, "typeProperties": props}


@pytest.mark.parametrize("name", sorted(PIPELINES_JSON))
def test_pipeline_references_only_what_it_defines(name: str) -> None:
    props = PIPELINES_JSON[name]["properties"]
    names: list[str] = []
    for activities, visible in _scopes(props["activities"], frozenset()):
        names += [a["name"] for a in activities]
        local = {a["name"] for a in activities}
        for activity in activities:
            for dep in activity.get("dependsOn", []):
                assert dep["activity"] in local, f"{activity['name']} depends on {dep}"
            for text in _strings(_own(activity)):
                for ref in re.findall(r"activity\('([^']+)'\)", text):
                    assert ref in visible, f"{activity['name']} refers to {ref}"
                for ref in re.findall(r"variables\('([^']+)'\)", text):
                    assert ref in props["variables"], f"undeclared variable {ref}"
                for ref in re.findall(r"pipeline\(\)\.parameters\.(\w+)", text):
                    assert ref in props["parameters"], f"undeclared parameter {ref}"
            if activity["type"] == "SetVariable":
                assert activity["typeProperties"]["variableName"] in props["variables"]
            if "linkedServiceName" in activity:
                assert activity["linkedServiceName"]["referenceName"] in LINKED
    assert len(names) == len(set(names)), "activity names must be unique"


def _walk(activities: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for scope, _ in _scopes(activities, frozenset()):
        yield from scope


def test_run_pipeline_starts_polls_and_fails_like_the_function_app() -> None:
    pipeline = PIPELINES_JSON["demandops_run"]["properties"]
    activities = {a["name"]: a for a in _walk(pipeline["activities"])}
    routes = {
        f.get_trigger().route: [m.value for m in f.get_trigger().methods]
        for f in FUNCTIONS
        if f.get_trigger().get_binding_name() == "httpTrigger"
    }
    start = activities["StartRun"]["typeProperties"]
    assert routes[start["functionName"]] == [start["method"]]
    body_keys = set(re.findall(r'"(\w+)": ', start["body"]["value"].replace('\\"', '"')))
    assert body_keys and body_keys <= set(FIELDS)

    poll = activities["GetRunStatus"]["typeProperties"]
    assert poll["method"] == "GET" and "statusUrl" in poll["url"]["value"]
    # the status URL answers 202 while the run goes on and 200 once it ended, the status in the
    # body of both: the activity must return the 202 rather than follow its Location header
    assert poll["turnOffAsync"] is True
    keep_status = activities["KeepRuntimeStatus"]["typeProperties"]["value"]["value"]
    assert keep_status == "@activity('GetRunStatus').output.runtimeStatus"
    keep = activities["KeepStatusUrl"]["typeProperties"]["value"]["value"]
    assert "statusQueryGetUri" in keep  # a key of the durable check-status response

    until = activities["UntilRunEnds"]["typeProperties"]["expression"]["value"]
    waiting = set(re.findall(r"'(\w+)'", until.split("createArray(")[1].split(")")[0]))
    terminal = {"Completed", "Failed", "Terminated", "Canceled"}
    statuses = {s.value for s in OrchestrationRuntimeStatus}
    assert waiting <= statuses and not waiting & terminal
    assert statuses - waiting >= terminal

    check = activities["CheckOutcome"]["typeProperties"]
    assert "'Completed'" in check["expression"]["value"]
    assert "failedRegions" in check["expression"]["value"]
    assert check["ifTrueActivities"][0]["type"] == "Fail"


def test_triggers_run_defined_pipelines_with_declared_parameters() -> None:
    kinds = set()
    for trigger in TRIGGERS.values():
        props = trigger["properties"]
        kinds.add(props["type"])
        for run in props["pipelines"]:
            pipeline = PIPELINES_JSON[run["pipelineReference"]["referenceName"]]["properties"]
            assert set(run.get("parameters", {})) <= set(pipeline["parameters"])
            if "pipeline" in run.get("parameters", {}):
                assert run["parameters"]["pipeline"] in PIPELINES
    assert kinds == {"ScheduleTrigger", "BlobEventsTrigger"}
    raw = TRIGGERS["raw_arrival"]["properties"]["typeProperties"]
    assert raw["blobPathBeginsWith"] == "/lake/blobs/raw/"
    weekly = TRIGGERS["weekly"]["properties"]["typeProperties"]["recurrence"]
    assert weekly["frequency"] == "Week" and weekly["schedule"]["weekDays"] == ["Monday"]


SECRETS = (
    "accountKey",
    "connectionString",
    "sasUri",
    "sasToken",
    "servicePrincipalKey",
    "password",
)


@pytest.mark.parametrize("name", sorted(LINKED))
def test_linked_services_use_managed_identity(name: str) -> None:
    props = LINKED[name]["properties"]
    text = json.dumps(props)
    assert not any(f'"{key}"' in text for key in SECRETS), f"{name} holds a credential"
    if props["type"] == "AzureFunction":
        assert props["typeProperties"]["authentication"] == "MSI"
    for ref in re.findall(r'"referenceName": "(\w+)"', text):
        assert ref in LINKED
