"""Training as a user runs it: fit into a run folder, export explicitly, validate shipped weights.

Every test works in its own temporary folder; none may write into the repository, and the
shipped checkpoints must come out byte for byte as they went in.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.cli import main
from pipelines.learning.train import lightning_main
from pipelines.shipped import checkpoint_path, config_path
from similarity.metric import SimilarityModule

REPO = Path(__file__).resolve().parents[1]
CONFIG = config_path("similarity")
SHIPPED = checkpoint_path("similarity")
TINY = [
    "--trainer.max_steps=2",
    "--trainer.val_check_interval=2",
    "--trainer.enable_checkpointing=false",
    "--data.init_args.batch_size=4",
    "--data.init_args.val_size=4",
    "--data.init_args.num_workers=0",
    "--model.init_args.hidden=16",
    "--model.init_args.test_pairs=6",
]
NOISE = ("💡", "LeafSpec", "LightningCLI's args", "wandb: WARNING", "Traceback")


def digests() -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(SHIPPED.parent.glob("*.pt"))}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny fit, as a user types it, in a fresh folder: its run folder."""
    work = tmp_path_factory.mktemp("fit")
    before = digests()
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    env.pop("WANDB_SILENT", None)  # the CLI's own defaults must keep the console quiet
    proc = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "fit", "--config", str(CONFIG), *TINY],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert digests() == before, "training changed a shipped checkpoint"
    out = proc.stdout + proc.stderr
    assert not [n for n in NOISE if n in out], out
    runs = list((work / "runs" / "similarity").iterdir())
    assert len(runs) == 1
    assert f"run folder: {runs[0].relative_to(work)}" in proc.stdout
    # the hint names the shipped file itself, wherever the fit ran, and says --force aloud
    export = f"induce export {runs[0].relative_to(work) / 'model.pt'} {SHIPPED.resolve()} --force"
    assert f"to ship it (replaces the shipped similarity.pt): {export}\n" in proc.stdout
    return runs[0]


def test_fit_writes_its_own_run_folder(run_dir: Path) -> None:
    assert (run_dir / "model.pt").is_file() and list(run_dir.glob("wandb/offline-run-*"))
    model = SimilarityModule.from_pretrained(run_dir / "model.pt")
    assert model.hparams.hidden == 16 and "train/loss" in model.checkpoint_metrics
    config = (run_dir / "config.yaml").read_text()
    assert "save_dir: runs\n" in config  # the config as given, so it runs again as it is


def test_export_copies_and_never_overwrites_unasked(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    dest = tmp_path / "checkpoints" / "similarity.pt"
    assert main(["export", str(run_dir), str(dest)]) == 0
    assert dest.read_bytes() == (run_dir / "model.pt").read_bytes()

    dest.write_bytes(b"the user's own file")
    capsys.readouterr()
    assert main(["export", str(run_dir / "model.pt"), str(dest)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "--force" in err[0]
    assert dest.read_bytes() == b"the user's own file"

    assert main(["export", str(run_dir.parent), str(dest), "--force"]) == 0  # a folder of runs: the newest
    assert dest.read_bytes() == (run_dir / "model.pt").read_bytes()


def test_export_never_overwrites_a_shipped_model_unasked(
    run_dir: Path, capsys: pytest.CaptureFixture
) -> None:
    before = digests()
    capsys.readouterr()
    assert main(["export", str(run_dir), str(SHIPPED)]) == 2
    assert "--force" in capsys.readouterr().err
    assert digests() == before


@pytest.mark.parametrize(
    ("source", "dest", "fragment"),
    [
        ("{tmp}/missing", "{tmp}/out.pt", "no such file or run folder"),
        ("{tmp}/not_a_model.pt", "{tmp}/out.pt", "not an exported model"),
        ("{run}", "{tmp}", "is a folder"),
    ],
)
def test_export_errors_are_one_line(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture, source: str, dest: str, fragment: str
) -> None:
    (tmp_path / "not_a_model.pt").write_bytes(b"junk")
    fill = {"tmp": tmp_path, "run": run_dir}
    assert main(["export", source.format(**fill), dest.format(**fill)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and fragment in err[0]
    assert not (tmp_path / "out.pt").exists()


@pytest.mark.skipif(not SHIPPED.is_file(), reason="no shipped similarity checkpoint")
def test_validate_a_shipped_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    before = digests()
    cli = lightning_main(
        ["validate", "--config", str(CONFIG), "--ckpt_path", str(SHIPPED), *TINY[3:6]]  # data: small, inline
    )
    assert digests() == before
    assert cli.model.hparams.hidden == 128  # built from the file's hyperparameters, not the config's
    recorded = SimilarityModule.recorded_metrics()
    metrics = cli.trainer.callback_metrics
    # the same figure, up to float differences between CPUs (0.4102 against 0.4104 on an AMD EPYC)
    assert float(metrics["test/spearman"]) == pytest.approx(recorded["test/spearman"], abs=2e-3)
    assert list(tmp_path.glob("runs/similarity/*-validate/config.yaml"))


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["validate", "--config", str(CONFIG)], "validate needs trained weights: add --ckpt_path"),
        (["test", "--config", str(CONFIG)], "test needs trained weights"),
        (["validate", "--config", str(CONFIG), "--ckpt_path", "missing.pt"], "checkpoint file not found"),
        (
            ["validate", "--config", str(CONFIG), "--ckpt_path", str(checkpoint_path("forward_flow"))],
            "but the config's model is similarity.metric.SimilarityModule",
        ),
        (["fit", "--config", str(CONFIG), "--ckpt_path", str(SHIPPED)], "is an exported model"),
    ],
)
def test_lightning_commands_refuse_in_one_line(
    args: list[str],
    fragment: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and fragment in err[-1], err
    assert not (tmp_path / "runs").exists()  # refused before anything was written


def test_an_explicit_export_path_is_never_overwritten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    mine = tmp_path / "mine.pt"
    mine.write_bytes(b"keep me")
    args = ["fit", "--config", str(CONFIG), *TINY, f"--trainer.callbacks.init_args.path={mine}"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "mine.pt already exists" in err[-1]
    assert mine.read_bytes() == b"keep me"


def test_a_smoke_run_says_what_ran_and_saves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """Lightning turns the logger off in fast_dev_run; the console still says what ran."""
    monkeypatch.chdir(tmp_path)
    before = digests()
    assert main(["fit", "--config", "similarity", "--trainer.fast_dev_run", "true", *TINY[3:]]) == 0
    out = capsys.readouterr().out
    (line,) = [s for s in out.splitlines() if s.startswith("smoke run")]
    assert "fit ran 1 training and 1 validation batch(es), train/loss " in line
    assert "Nothing was saved" in line and "holds only its config.yaml" in line
    assert "induce export" not in out  # one batch of training is nothing to ship
    (run,) = (tmp_path / "runs" / "similarity").iterdir()
    assert [p.name for p in run.iterdir()] == ["config.yaml"]
    assert digests() == before


def test_the_export_hint_is_a_command_that_works(
    run_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """Run as printed: into a new file, or over an existing one with the --force it shows."""
    from pipelines.learning import train

    monkeypatch.chdir(tmp_path)
    dest = tmp_path / "shipped" / "similarity.pt"
    monkeypatch.setattr(train, "checkpoint_path", lambda name: dest)
    model = run_dir / "model.pt"
    for exists in (False, True):
        hint = train.export_hint(model, "similarity.pt")
        command = hint.split(": ", 1)[1].split()
        assert command[:2] == ["induce", "export"] and ("--force" in command) == exists
        assert main(command[1:]) == 0, capsys.readouterr().err
        assert dest.read_bytes() == model.read_bytes()
