"""The package as a user installs it: shipped files found with importlib.resources, a wheel
that solves from any folder, and ``induce --version``."""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from importlib import resources
from pathlib import Path

import pytest
import yaml

from pipelines.cli import main
from pipelines.interface.pipeline import preset_spec
from pipelines.learning.improve import MODELS
from pipelines.shipped import CHECKPOINTS, checkpoint_name, config_path, resolve_checkpoint, shipped_configs

REPO = Path(__file__).resolve().parents[1]


def test_shipped_files_are_package_data() -> None:
    data = resources.files("pipelines")
    for name, class_path in CHECKPOINTS.items():
        assert (data / "checkpoints" / f"{name}.pt").is_file(), name
        assert (data / "checkpoints" / f"{name}.md").is_file(), name  # its model card
        module, cls = class_path.rsplit(".", 1)
        model = getattr(importlib.import_module(module), cls)
        assert model.default_checkpoint == f"{name}.pt" and model.shipped_path().is_file()
    shipped = {p.name for p in (data / "checkpoints").iterdir() if p.name.endswith(".pt")}
    assert shipped == {f"{n}.pt" for n in CHECKPOINTS}  # the registry lists every shipped file
    assert "full" in shipped_configs("pipelines")
    for config, checkpoint in MODELS.values():  # induce improve's trace configs and start models
        assert config_path(config).is_file() and checkpoint in CHECKPOINTS
    assert {"edit_flow", "similarity", "recognition"} <= set(shipped_configs())


def test_presets_and_shipped_yaml_name_registered_checkpoints() -> None:
    def refs(spec: dict) -> list[str]:
        out = []
        for stage in spec.values():
            if isinstance(stage, dict):
                for key, value in (stage.get("init_args") or {}).items():
                    if (
                        key in ("checkpoint", "similarity", "reverse_flow", "decomposer", "recognizer")
                        and value
                    ):
                        out.append(value)
        return out

    full = yaml.safe_load(config_path("full", "pipelines").read_text())
    # every shipped model but the forward flow, whose screen no preset asks (verify_all runs
    # every legal edit); it ships for pipelines with verify_all: false
    for spec in (preset_spec("full"), full):
        assert sorted(set(refs(spec))) == sorted(set(CHECKPOINTS) - {"forward_flow"}), spec.get("name")


def test_checkpoint_and_config_names_resolve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    shipped = resolve_checkpoint("edit_flow")
    assert shipped.is_file() and shipped.parent.name == "checkpoints"
    for spelling in ("edit_flow.pt", "checkpoints/edit_flow.pt"):  # older configs' spelling too
        assert resolve_checkpoint(spelling) == shipped
    assert checkpoint_name("other/edit_flow.pt") is None and checkpoint_name("nope") is None
    assert resolve_checkpoint("nope.pt") == Path("nope.pt")  # loading it then says it is missing
    (tmp_path / "similarity").mkdir()  # a folder named like a model (the repository's own package)
    assert resolve_checkpoint("similarity").is_file() and config_path("similarity").is_file()
    own = tmp_path / "edit_flow.pt"
    own.write_bytes(b"")
    assert resolve_checkpoint("edit_flow.pt") == Path("edit_flow.pt")  # a file on disk comes first
    assert config_path("full", "pipelines").is_file() and config_path("full.yaml", "pipelines").is_file()
    (tmp_path / "full.yaml").write_text("preset: plain\n")
    assert config_path("full.yaml", "pipelines") == Path("full.yaml")
    assert config_path("missing", "pipelines") == Path("missing")


def test_version(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.startswith("induce ")


def _source_copy(dest: Path) -> Path:
    """The repository's files (tracked, and new ones not ignored) copied to ``dest``: the build
    leaves nothing in the working tree."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    for rel in filter(None, listed.stdout.split("\0")):
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


def _fresh_env(root: Path) -> Path:
    """A new virtualenv that sees this one's dependencies (not its editable install of the repo)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    python = root / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    # plain path lines: the dependencies' own .pth files (the editable install's among them) do not run
    Path(purelib, "_dependencies.pth").write_text("\n".join(sorted(deps)) + "\n")
    return python


@pytest.mark.slow
@pytest.mark.parametrize("how", ["wheel", "source"])
def test_installed_package_solves_from_another_folder(tmp_path: Path, how: str) -> None:
    """A built wheel, or ``pip install .``, in a fresh environment with the repository off the
    path, solves Nguyen-5 with the default pipeline from a folder outside the repository."""
    src = _source_copy(tmp_path / "src")
    python = _fresh_env(tmp_path / "env")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1", WANDB_MODE="offline")
    pip = [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation"]
    if how == "wheel":
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "-q",
                "--no-deps",
                "--no-build-isolation",
                "-w",
                "dist",
                ".",
            ],
            cwd=src,
            env=env,
            check=True,
        )
        (wheel,) = (src / "dist").glob("active_induction-*.whl")
        subprocess.run([*pip, str(wheel)], env=env, check=True)
    else:
        subprocess.run([*pip, str(src)], env=env, check=True)
    shutil.rmtree(src)  # nothing of the source is left to read from

    work = tmp_path / "elsewhere"
    work.mkdir()
    where = subprocess.run(
        [str(python), "-c", "import pipelines; print(pipelines.__file__)"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert Path(where.strip()).is_relative_to(tmp_path / "env"), where
    induce = str(tmp_path / "env" / "bin" / "induce")
    version = subprocess.run([induce, "--version"], cwd=work, env=env, capture_output=True, text=True)
    release = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert version.returncode == 0 and version.stdout.split() == ["induce", release], version
    proc = subprocess.run(  # bound by calls, not seconds: a loaded machine gives the same answer
        [induce, "solve", "Nguyen-5", "--calls", "20000", "--seconds", "120"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "recovered: True" in proc.stdout, proc.stdout[-2000:]
