"""The deployment examples (examples/) and the commands in docs/deployment.md cannot rot: every file in examples/ is
parsed by a reader for its kind (a new kind fails here until it has one), and every configuration key, command-line
flag and package version they use is checked against conf/sr2fhir.yaml, the command line's parser and
pyproject.toml. The Airflow DAG runs against a stub of Airflow (no Airflow installed), so its handling of the job's
exit statuses is checked too. Nothing here runs Spark."""

from __future__ import annotations

import ast
import json
import re
import shlex
import subprocess
import sys
import tomllib
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jobs.cli import build_parser
from jobs.config import load_config
from jobs.errors import ExitStatus

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
DEPLOYMENT = REPO / "docs" / "deployment.md"
DAG = EXAMPLES / "airflow_sr2fhir_nightly.py"
DEFAULTS = load_config(output="unused", need_inputs=False)

KNOWN_KINDS = {".py", ".json", ".yaml", "Dockerfile"}


def example_files() -> list[Path]:
    return sorted(p for p in EXAMPLES.iterdir() if p.is_file())


def test_every_example_is_of_a_kind_these_tests_read() -> None:
    kinds = {p.name if p.name == "Dockerfile" else p.suffix for p in example_files()}
    assert kinds <= KNOWN_KINDS, f"no test reads {sorted(kinds - KNOWN_KINDS)}: add one to tests/test_examples.py"
    assert kinds == KNOWN_KINDS  # and each kind read here still has an example


def job_arguments(tokens: list[str]) -> list[str]:
    """The arguments given to the job in a command: after `sr_to_fhir.py` (spark-submit's application), or
    after `sr2fhir` (the console script), or after `--` (gcloud's separator)."""
    if tokens[:1] == ["gcloud"]:
        return ["run", *tokens[tokens.index("--") + 1 :]] if "--" in tokens else []
    for index, token in enumerate(tokens):
        if token.endswith("sr_to_fhir.py") and index + 1 < len(tokens) and tokens[index + 1].startswith("-"):
            return ["run", *tokens[index + 1 :]]
        if token == "sr2fhir" and index + 1 < len(tokens) and tokens[index + 1] in ("run", "maintain"):
            return tokens[index + 1 :]
    return []


def check_job_arguments(arguments: list[str]) -> None:
    """The job's own parser takes them, and its configuration takes their `--set`s (files named by `--conf` are
    checked where they are in this repository)."""
    args = build_parser().parse_args(arguments)
    load_config(output="unused", need_inputs=False, overrides=args.overrides, table_format=args.table_format)


def spark_submit_packages(tokens: list[str]) -> tuple[list[str], list[str]]:
    """(--packages, --exclude-packages) of a spark-submit command, as lists of Maven coordinates."""
    given = {tokens[i]: tokens[i + 1] for i in range(len(tokens) - 1) if tokens[i].startswith("--")}
    return given.get("--packages", "").split(","), given.get("--exclude-packages", "").split(",")


def check_packages(packages: list[str], excludes: list[str]) -> None:
    """Packages that name Delta or hadoop-aws name the versions a local session resolves."""
    for package in packages:
        if package.startswith("io.delta:"):
            assert package == DEFAULTS.spark.delta_package
        if package.startswith("org.apache.hadoop:hadoop-aws:"):
            assert package == DEFAULTS.spark.s3_package
    if excludes != [""]:
        assert tuple(excludes) == DEFAULTS.spark.jar_excludes


# --- docs/deployment.md ------------------------------------------------------------------------------------------


def shell_commands(markdown: str) -> Iterator[list[str]]:
    """The commands of the page's bash blocks, continuation lines joined."""
    for block in re.findall(r"```bash\n(.*?)```", markdown, flags=re.DOTALL):
        for command in block.replace("\\\n", " ").splitlines():
            if command.strip():
                yield shlex.split(command)


def test_the_deployment_pages_job_commands_parse_and_use_existing_keys() -> None:
    text = DEPLOYMENT.read_text()
    checked = 0
    for tokens in shell_commands(text):
        if arguments := job_arguments(tokens):
            check_job_arguments(arguments)
            checked += 1
        if tokens[:1] == ["spark-submit"]:
            check_packages(*spark_submit_packages(tokens))
        for properties in (t.removeprefix("--properties=") for t in tokens if t.startswith("--properties=")):
            packages = properties.split("spark.jars.packages=")[1].split(",spark.")[0]  # gcloud's comma list
            check_packages(packages.split(","), [""])
    # The EMR step gives spark-submit's arguments comma-separated.
    for step in re.findall(r"Args=\[(.*?)\]", text):
        check_job_arguments(job_arguments(step.split(",")))
        checked += 1
    assert checked >= 4  # YARN, Kubernetes, EMR, Dataproc
    for key in re.findall(r"`((?:output|spark|input|incremental|fhir|maintenance|mapping)\.[a-z0-9_]+)[`:]", text):
        section, name = key.split(".", 1)
        assert name in DEFAULTS.raw[section], f"docs/deployment.md names {key}, which conf/sr2fhir.yaml lacks"


def test_the_readme_points_to_the_deployment_page() -> None:
    assert "docs/deployment.md" in (REPO / "README.md").read_text()


# --- examples/*.yaml ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [p for p in example_files() if p.suffix == ".yaml"], ids=lambda p: p.name)
def test_a_configuration_example_loads_over_the_defaults(path: Path) -> None:
    config = load_config(output="unused", need_inputs=False, conf_files=[path])
    assert config.out.catalog_schema == "sr2fhir"  # what the examples' queries and the docs use


# --- examples/databricks-job.json --------------------------------------------------------------------------------


def test_the_databricks_job_runs_the_wheels_console_script_with_valid_arguments() -> None:
    job = json.loads((EXAMPLES / "databricks-job.json").read_text())
    (task,) = job["tasks"]
    wheel_task = task["python_wheel_task"]
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert wheel_task["package_name"] == pyproject["project"]["name"]
    assert wheel_task["entry_point"] in pyproject["project"]["scripts"]
    assert all(library["whl"].endswith(".whl") for library in task["libraries"])
    check_job_arguments(wheel_task["parameters"])
    assert job["max_concurrent_runs"] == 1  # one run at a time per output: a second would only exit 75


# --- examples/Dockerfile -----------------------------------------------------------------------------------------


def test_the_dockerfile_installs_the_wheel_and_resolves_the_jobs_own_packages() -> None:
    text = (EXAMPLES / "Dockerfile").read_text()
    instructions = [line.split()[0] for line in text.replace("\\\n", " ").splitlines() if line and line[0].isupper()]
    assert instructions[:2] == ["ARG", "FROM"] and instructions[-1] == "USER"
    arguments = dict(re.findall(r"^ARG (\w+)=(\S+)$", text, flags=re.MULTILINE))
    assert arguments["DELTA_PACKAGE"] == DEFAULTS.spark.delta_package
    assert arguments["S3_PACKAGE"] == DEFAULTS.spark.s3_package
    assert tuple(arguments["JAR_EXCLUDES"].split(",")) == DEFAULTS.spark.jar_excludes
    assert re.search(r"COPY dist/\*\.whl", text) and "pip install --no-cache-dir /tmp/wheels/*.whl" in text
    pins = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["spark"]
    for pin in re.findall(r'"((?:delta-spark|pandas)[^"]*)"', text):
        assert pin in pins, f"the image installs {pin}, pyproject.toml pins {pins}"
    for setting in ("spark.sql.extensions io.delta.sql.DeltaSparkSessionExtension", "DeltaCatalog"):
        assert setting in text
    # The application file it writes is the job's entry: the same call as jobs/sr_to_fhir.py.
    assert 'main(["run", *sys.argv[1:]])' in (REPO / "jobs" / "sr_to_fhir.py").read_text()
    assert 'main([\\"run\\", *sys.argv[1:]])' in text or 'main(["run", *sys.argv[1:]])' in text


# --- examples/airflow_sr2fhir_nightly.py -------------------------------------------------------------------------


class AirflowException(Exception):
    pass


class AirflowFailException(AirflowException):
    pass


class StubAirflow:
    """The few names the DAG imports, as modules. `dag(...)` records its arguments and keeps the function, which
    the DAG file calls once to define its tasks; `task(...)` records each task's function and, as Airflow's does,
    returns a callable that defines the task instead of running it."""

    def __init__(self) -> None:
        self.dag_arguments: dict[str, Any] = {}
        self.tasks: list[Any] = []

    def dag(self, **arguments: Any) -> Any:
        self.dag_arguments = arguments
        return lambda function: function

    def task(self, **arguments: Any) -> Any:
        def define(function: Any) -> Any:
            self.tasks.append(function)
            return lambda *args, **kwargs: None

        return define

    def modules(self) -> dict[str, types.ModuleType]:
        decorators = types.ModuleType("airflow.decorators")
        decorators.dag = self.dag  # type: ignore[attr-defined]
        decorators.task = self.task  # type: ignore[attr-defined]
        exceptions = types.ModuleType("airflow.exceptions")
        exceptions.AirflowException = AirflowException  # type: ignore[attr-defined]
        exceptions.AirflowFailException = AirflowFailException  # type: ignore[attr-defined]
        return {
            "airflow": types.ModuleType("airflow"),
            "airflow.decorators": decorators,
            "airflow.exceptions": exceptions,
        }


@pytest.fixture
def airflow(monkeypatch: pytest.MonkeyPatch) -> tuple[StubAirflow, types.ModuleType]:
    """The DAG file executed against the stub: (the stub, with what the file defined; the DAG's module)."""
    stub = StubAirflow()
    for name, module in stub.modules().items():
        monkeypatch.setitem(sys.modules, name, module)
    module = types.ModuleType("airflow_sr2fhir_nightly")
    module.__file__ = str(DAG)
    exec(compile(DAG.read_text(), str(DAG), "exec"), module.__dict__)
    return stub, module


def test_the_dag_compiles_and_imports_only_airflow_and_the_standard_library() -> None:
    tree = ast.parse(DAG.read_text())
    imported = {a.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert imported <= {"__future__", "airflow", "datetime", "os", "pathlib", "subprocess"}


def test_the_dags_command_is_the_jobs_with_its_own_packages(airflow: tuple[StubAirflow, types.ModuleType]) -> None:
    stub, dag = airflow
    command = [*dag.SPARK_SUBMIT, *dag.JOB_ARGUMENTS]
    assert command[0] == "spark-submit" and command[command.index("--deploy-mode") + 1] == "client"
    check_packages(*spark_submit_packages(command))
    check_job_arguments(job_arguments(command))
    assert Path(dag.CLUSTER_CONF) == EXAMPLES / "sr2fhir-cluster.yaml"
    assert stub.dag_arguments["max_active_runs"] == 1  # one run at a time per output
    assert stub.dag_arguments["default_args"]["retries"] > 0


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (ExitStatus.OK, None),
        (ExitStatus.BUSY, AirflowException),
        (ExitStatus.FAILED, AirflowException),
        (ExitStatus.SIGTERM, AirflowException),
        (ExitStatus.USAGE, AirflowFailException),
    ],
)
def test_the_dag_retries_what_a_later_run_can_do_and_fails_bad_configuration_at_once(
    airflow: tuple[StubAirflow, types.ModuleType],
    monkeypatch: pytest.MonkeyPatch,
    status: int,
    outcome: type[Exception] | None,
) -> None:
    """Airflow retries a task that raised AirflowException; AirflowFailException fails it without retries."""
    stub, dag = airflow
    ran: list[list[str]] = []

    def run(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        ran.append(command)
        return subprocess.CompletedProcess(command, status)

    monkeypatch.setattr(dag.subprocess, "run", run)
    (run_task,) = stub.tasks
    if outcome is None:
        run_task()
    else:
        with pytest.raises(outcome) as raised:
            run_task()
        assert type(raised.value) is outcome  # a retried failure is not the no-retry kind
    assert ran == [[*dag.SPARK_SUBMIT, *dag.JOB_ARGUMENTS]]
