"""The project's own promises about its files."""

import re
import tomllib
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[1]


#: conda-forge's names for packages PyPI names otherwise (psycopg's conda build brings libpq).
CONDA_NAMES = {
    "python-duckdb": "duckdb",
    "prometheus_client": "prometheus-client",
    "python-xxhash": "xxhash",
    "psycopg": "psycopg[binary]",
}


def test_environment_yml_lists_the_same_dependencies_as_pyproject():
    """The conda environment holds the runtime dependencies and the dev extra: conda-forge
    builds (by their conda-forge names) or, for what conda-forge lacks, pip's."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + project["optional-dependencies"]["dev"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"]
    conda = [d for d in env if isinstance(d, str) and not d.startswith(("python>", "python=", "pip"))]
    pip = [p for d in env if isinstance(d, dict) for p in d.get("pip") or []]
    named = [re.sub(r"^[\w.-]+", lambda m: CONDA_NAMES.get(m[0], m[0]), d) for d in conda]
    assert sorted(named + pip) == sorted(wanted)


def test_every_notebook_is_paired_small_and_follows_the_skeleton():
    notebooks = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert notebooks, "no notebooks found"
    for nb_path in notebooks:
        assert nb_path.with_suffix(".py").exists(), f"{nb_path.name} has no jupytext .py pair"
        assert nb_path.stat().st_size < 1 << 20, f"{nb_path.name} is over 1 MiB"
        nb = nbformat.read(nb_path, as_version=4)
        tags = [c.metadata.get("tags", []) for c in nb.cells if c.cell_type == "code"]
        assert "parameters" in tags[0], f"{nb_path.name}: first code cell must be tagged 'parameters'"
        headings = [c.source.splitlines()[0] for c in nb.cells if c.cell_type == "markdown" and c.source]
        for step in ("Data", "Measure", "Look", "Conclude", "Export"):
            assert f"## {step}" in headings, f"{nb_path.name} lacks the '## {step}' section"
        for cell in nb.cells:
            if cell.cell_type == "code":
                long_defs = re.findall(r"^def .*(?:\n(?:    .*|\s*))+", cell.source, re.M)
                assert all(d.count("\n") <= 6 for d in long_defs), f"{nb_path.name} defines a long function"


def test_readme_starts_with_the_two_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text()
    first_block = readme.split("```")[1]
    assert "make report" in first_block and "make test" in first_block
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_every_cli_command_is_documented_in_the_readme():
    from workbench.cli import main

    readme = (ROOT / "README.md").read_text()
    for name in main.commands:
        assert f"workbench {name}" in readme, f"`workbench {name}` is not in the README"
