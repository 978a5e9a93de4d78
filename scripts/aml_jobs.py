"""Azure ML jobs for the weekly batch: build the training or scoring pipeline (one node per region,
run side by side), submit it to a workspace, wait, and register each region's candidate tagged
`stage=awaiting-promotion`.

    python -m scripts.aml_jobs build  --kind train --env dev --lake abfs://lake@acct.dfs.core.windows.net
    python -m scripts.aml_jobs submit --kind train --env dev --lake ... [--registry-uri URI] \\
        --subscription SUB --resource-group RG --workspace WS [--wait] [--register]

Every node gets the environment, the lake and the registry's MLflow tracking URI (default
`azureml`: the workspace's, which Azure ML gives the job's node).

`build` is offline (no credentials, no network): it prints the job as Azure ML YAML, so CI checks
that the job can be built. When `ml/components/pipeline_<kind>.yml` exists, that file is the job
(loaded with azure-ai-ml, its `lake` and `env` inputs set from the command line); otherwise the job
is built here from the `demandops` CLI and the environment in ml/environment/."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from azure.ai.ml import Input, MLClient, Output, command, dsl, load_environment, load_job
from azure.ai.ml.entities import ManagedIdentityConfiguration, Model, PipelineJob

from demandops.core.errors import DemandOpsError
from demandops.core.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent
KINDS = ("train", "score")
AWAITING = "awaiting-promotion"
AZUREML = (
    "azureml"  # registry_uri: the workspace's MLflow tracking URI (demandops/core/settings.py)
)


def pipeline_file(root: Path, kind: str) -> Path:
    return root / "ml" / "components" / f"pipeline_{kind}.yml"


def build_job(
    kind: str,
    env: str,
    lake: str,
    regions: list[str],
    registry: str = AZUREML,
    compute: str = "cpu-cluster",
    root: Path = ROOT,
    git_sha: str = "unknown",
) -> PipelineJob:
    """The pipeline job for `kind` over `regions`: from ml/components/ if there, else built here."""
    if kind not in KINDS:
        raise ValueError(f"unknown job kind {kind!r}: expected one of {', '.join(KINDS)}")
    tags = {"env": env, "git_sha": git_sha, "kind": kind}
    source = pipeline_file(root, kind)
    if source.exists():
        job = load_job(source)
        if not isinstance(job, PipelineJob):
            raise ValueError(f"{source} is not a pipeline job")
        setattr(job.inputs, "lake", lake)  # noqa: B010  # attribute assignment binds an input
        setattr(job.inputs, "env", env)  # noqa: B010
        job.tags = {**(job.tags or {}), **tags}
        return job
    step = command(
        name=f"demandops_{kind}_region",
        display_name=f"{kind} one region",
        code=str(root),
        command=(
            f"python -m demandops.cli {kind} --local --env ${{{{inputs.env}}}}"
            " --lake ${{inputs.lake}} --registry-uri ${{inputs.registry}}"
            " --region ${{inputs.region}} --quiet --report-json ${{outputs.report}}/report.json"
        ),
        inputs={name: Input(type="string") for name in ("env", "lake", "registry", "region")},
        outputs={"report": Output(type="uri_folder")},
        environment=load_environment(root / "ml" / "environment" / "environment.yml"),
        identity=ManagedIdentityConfiguration(),
        is_deterministic=False,  # the lake's content, not the inputs' text, decides the output
    )

    @dsl.pipeline(  # type: ignore[call-overload]
        name=f"demandops_{kind}",
        display_name=f"demandops {kind} ({env})",
        experiment_name=f"demandops-{kind}-{env}",
        compute=compute,
        tags=tags,
    )
    def batch(lake, env, registry):  # type: ignore[no-untyped-def]  # azure-ai-ml reads no string annotations
        reports = {}
        for region in regions:
            node = step(env=env, lake=lake, registry=registry, region=region)
            node.name = f"{kind}_{region}"
            reports[f"report_{region}"] = node.outputs.report
        return reports

    job = batch(lake=lake, env=env, registry=registry)
    assert isinstance(job, PipelineJob)
    return job


def candidates(job_name: str, regions: list[str], tags: dict[str, str]) -> list[Model]:
    """One registered model per region: the trained job's report folder, awaiting promotion."""
    return [
        Model(
            name=f"demandops-{region}",
            path=f"azureml://jobs/{job_name}/outputs/report_{region}",
            type="custom_model",
            description=f"demandops candidate for region {region}, from job {job_name}",
            tags={**tags, "region": region, "job": job_name, "stage": AWAITING},
        )
        for region in regions
    ]


def register(
    client: MLClient, job_name: str, regions: list[str], tags: dict[str, str]
) -> list[Model]:
    """Register each region's candidate in the workspace; return them with their new versions."""
    return [client.models.create_or_update(m) for m in candidates(job_name, regions, tags)]


def _git_sha(root: Path) -> str:
    done = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=False
    )
    return done.stdout.strip() or "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="action", required=True)
    for action in ("build", "submit"):
        p = sub.add_parser(action)
        p.add_argument("--kind", choices=KINDS, required=True)
        p.add_argument("--env", default="dev", help="environment in config/environments")
        p.add_argument("--lake", required=True, help="abfs:// URL of the environment's lake")
        p.add_argument(
            "--registry-uri", default=AZUREML, help="MLflow tracking URI (default: the workspace's)"
        )
        p.add_argument("--region", action="append", metavar="ID", help="default: all regions")
        p.add_argument("--compute", default="cpu-cluster")
        p.add_argument("--code", type=Path, default=ROOT, help="source tree to upload")
        if action == "submit":
            p.add_argument("--subscription", required=True)
            p.add_argument("--resource-group", required=True)
            p.add_argument("--workspace", required=True)
            p.add_argument("--wait", action="store_true", help="stream the job until it ends")
            p.add_argument("--register", action="store_true", help="register candidates (train)")
    return parser


def _submit(args: argparse.Namespace, job: PipelineJob, regions: list[str]) -> int:
    from azure.identity import DefaultAzureCredential

    client = MLClient(
        DefaultAzureCredential(), args.subscription, args.resource_group, args.workspace
    )
    created = client.jobs.create_or_update(job)
    print(f"submitted {created.name}: {created.studio_url}")
    if args.wait or args.register:
        client.jobs.stream(created.name)
        status = client.jobs.get(created.name).status
        if status != "Completed":
            print(f"aml_jobs: error: job {created.name} ended {status}", file=sys.stderr)
            return 1
    if args.register and args.kind == "train":
        for model in register(client, created.name, regions, dict(job.tags or {})):
            print(f"registered {model.name}:{model.version} ({AWAITING})")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(args.code / "config", args.env)
        regions = [r.id for r in settings.select_regions(args.region)]
        job = build_job(
            args.kind, args.env, args.lake, regions, args.registry_uri, args.compute, args.code,
            _git_sha(args.code),
        )  # fmt: skip
    except (DemandOpsError, ValueError) as exc:
        print(f"aml_jobs: error: {exc}", file=sys.stderr)
        return 2
    if args.action == "build":
        dumped: dict[str, Any] = job._to_dict()
        print(yaml.safe_dump(dumped, sort_keys=False))
        return 0
    return _submit(args, job, regions)


if __name__ == "__main__":
    sys.exit(main())
