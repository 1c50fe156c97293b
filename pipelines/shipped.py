"""The files that ship inside the package, found with :mod:`importlib.resources`.

``pipelines/checkpoints/`` holds the trained models (``NAME.pt``, each with its model card
``NAME.md``); ``pipelines/configs/`` the LightningCLI configs (``NAME.yaml``) and, in
``pipelines/configs/pipelines/``, the pipeline YAMLs. An installed wheel reads them from any
folder.

A shipped checkpoint is named by its model, ``edit_flow``; ``edit_flow.pt`` and
``checkpoints/edit_flow.pt`` (the spelling of configs written before the models moved into the
package) name it too. A file that exists on disk always comes first: a user's own path is read
as given.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

# The shipped checkpoints, the one list of them: model name -> the class its file holds.
CHECKPOINTS = {
    "similarity": "similarity.metric.SimilarityModule",
    "edit_flow": "flows.edit_flow.EditFlow",
    "forward_flow": "flows.forward_flow.ForwardFlow",
    "reverse_flow": "flows.reverse_flow.ReverseFlow",
    "decomposition_policy": "flows.decomposition_policy.DecompositionPolicy",
    "recognition": "flows.recognition.Recognition",
}
CHECKPOINT_FOLDER = "checkpoints"
CONFIG_FOLDER = "configs"

_extracted = contextlib.ExitStack()  # files copied out of a zipped install, kept while the process runs
atexit.register(_extracted.close)


def data_path(*parts: str) -> Path:
    """A file of the package's data as a real path (copied out once if the package is zipped)."""
    resource = resources.files(__package__)
    for part in parts:
        resource = resource / part
    if isinstance(resource, Path):
        return resource
    if not resource.is_file():
        return Path(str(resource))
    return _extracted.enter_context(resources.as_file(resource))


def checkpoint_name(ref: str | Path) -> str | None:
    """The shipped model that ``ref`` names (``edit_flow``, ``edit_flow.pt`` or
    ``checkpoints/edit_flow.pt``), or None."""
    parts = Path(ref).parts
    if len(parts) == 2 and parts[0] == CHECKPOINT_FOLDER and parts[1].endswith(".pt"):
        parts = parts[1:]
    if len(parts) != 1:
        return None
    name = parts[0].removesuffix(".pt")
    return name if name in CHECKPOINTS else None


def checkpoint_path(name: str) -> Path:
    """The shipped checkpoint file of model ``name`` (a key of ``CHECKPOINTS``)."""
    if name not in CHECKPOINTS:
        raise KeyError(f"no shipped checkpoint {name!r}; shipped: {', '.join(CHECKPOINTS)}")
    return data_path(CHECKPOINT_FOLDER, f"{name}.pt")


def resolve_checkpoint(ref: str | Path) -> Path:
    """A checkpoint as a user writes it: the file itself when it exists, else the shipped
    checkpoint it names, else the path as given (so that loading it says it is missing)."""
    path = Path(ref)
    if path.is_absolute() or path.is_file():  # a folder named like a model (runs/similarity) is no file
        return path
    name = checkpoint_name(ref)
    return checkpoint_path(name) if name is not None else path


def config_path(ref: str | Path, folder: str = "") -> Path:
    """A config as a user writes it: the file itself when it exists, else the shipped
    ``configs/<folder>/NAME.yaml`` that a bare ``NAME`` (or ``NAME.yaml``) names, else the
    path as given."""
    path = Path(ref)
    if path.is_absolute() or path.is_file() or len(path.parts) != 1:
        return path
    name = path.name if path.suffix in (".yaml", ".yml") else f"{path.name}.yaml"
    shipped = data_path(CONFIG_FOLDER, *([folder] if folder else []), name)
    return shipped if shipped.is_file() else path


def shipped_configs(folder: str = "") -> list[str]:
    """The names of the shipped configs in ``configs/<folder>``."""
    root = resources.files(__package__) / CONFIG_FOLDER
    if folder:
        root = root / folder
    return sorted(p.name.removesuffix(".yaml") for p in root.iterdir() if p.name.endswith(".yaml"))


# --- which checkpoint files a solve used ----------------------------------------------------------
_RECORDERS: list[dict[str, None]] = []  # one ordered set of paths per recording under way
_DIGESTS: dict[tuple[str, int, int], str] = {}


@contextlib.contextmanager
def recording_checkpoints() -> Iterator[dict[str, None]]:
    """Collect (in a dict used as an ordered set) the resolved path of every checkpoint that
    :func:`flows.checkpoint.load_pretrained` hands out while the block runs."""
    used: dict[str, None] = {}
    _RECORDERS.append(used)
    try:
        yield used
    finally:
        _RECORDERS.remove(used)


def note_checkpoint(path: str) -> None:
    """Tell the recordings under way that the checkpoint at ``path`` (resolved) is in use."""
    for used in _RECORDERS:
        used[path] = None


def checkpoint_digest(path: str | Path) -> str:
    """The file's sha256, its first 12 hex digits (computed once per file version)."""
    stat = Path(path).stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    if key not in _DIGESTS:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        _DIGESTS[key] = digest.hexdigest()[:12]
    return _DIGESTS[key]


def describe_checkpoints(paths) -> list[dict]:
    """Each checkpoint file as ``{"path", "sha256", "shipped"}``; ``shipped`` is the model's
    name when the file is the package's own checkpoint of it, else None."""
    out = []
    for path in paths:
        path = Path(path)
        name = path.stem if path.suffix == ".pt" and path.stem in CHECKPOINTS else None
        shipped = name if name is not None and path == checkpoint_path(name).resolve() else None
        try:
            digest = checkpoint_digest(path)
        except OSError:  # gone since it was loaded
            digest = None
        out.append({"path": str(path), "sha256": digest, "shipped": shipped})
    return out
