"""A run's files: ``run.dir``, ``run.save(glob)`` and ``run.log_code()``, as W&B has them.

W&B uploads the files of a run's files folder (``run.dir``, ``<dir>/wandb/run-<time>-<id>/
files``) with the run; ``save`` puts files there (a link, so the run takes what the file
holds when it ends; a copy with ``policy="now"``). soko keeps that folder's files, when the
run finishes, as a version of an artifact the run logs: ``run-<id>-files``, type
:data:`RUN_FILES_TYPE` (docs/decisions.md). ``log_code`` makes W&B's ``code`` artifact,
named ``source-<project>-<program path>``.
"""

from __future__ import annotations

import glob as globbing
import inspect
import logging
import os
import pathlib
import re
import shutil
import sys
from collections.abc import Callable, Iterator
from typing import Any

from soko.errors import ValidationError

RUN_FILES_TYPE = "run_files"
CODE_TYPE = "code"
SAVE_POLICIES = ("live", "end", "now")
_WANDB_DIRS = ("wandb", ".wandb")

logger = logging.getLogger("soko")

PathFilter = Callable[[str, str], bool] | Callable[[str], bool]


def run_files_name(run_id: str) -> str:
    return f"run-{run_id}-files"


def files_dir(root: str | os.PathLike[str], run_id: str, started: str) -> pathlib.Path:
    """W&B's layout: ``<root>/wandb/run-<YYYYmmdd_HHMMSS>-<id>/files``."""
    return pathlib.Path(root).absolute() / "wandb" / f"run-{started}-{run_id}" / "files"


def save(
    files_root: pathlib.Path,
    glob_str: str | os.PathLike[str] | bytes,
    base_path: str | os.PathLike[str] | None,
    policy: str,
    expand: bool,
) -> list[str]:
    """W&B's ``run.save``: the files matching *glob_str* now, placed in *files_root* under
    their path relative to *base_path*; returns their paths there."""
    if isinstance(glob_str, bytes):
        glob_str = glob_str.decode("utf-8")
    glob_str = os.fspath(glob_str)
    if glob_str.startswith(("gs://", "s3://")):
        logger.warning("%s is a cloud storage url, can't save file to soko.", glob_str)
        return []
    if policy not in SAVE_POLICIES:
        raise ValueError('Only "live", "end" and "now" policies are currently supported.')
    glob_path = pathlib.PurePath(glob_str)
    resolved = pathlib.PurePath(os.path.abspath(glob_path))
    if base_path is not None:
        base = pathlib.PurePath(os.path.abspath(base_path))
    elif not glob_path.is_absolute():
        base = pathlib.PurePath(os.path.abspath("."))
    else:
        # W&B keeps one folder level of an absolute glob given without a base path.
        base = resolved.parent.parent
    try:
        relative = resolved.relative_to(base)
    except ValueError:
        raise ValueError(f"Glob {glob_str!r} is not under the base path {str(base)!r}.") from None
    if ".." in relative.parts:
        raise ValueError(f"Glob {glob_str!r} may not go above its base path.")
    if expand:
        sources = [pathlib.Path(p) for p in sorted(globbing.glob(str(base / relative)))]
    else:
        literal = pathlib.Path(base / relative)
        sources = [literal] if literal.exists() else []
    saved: list[str] = []
    for source in sources:
        if not source.is_file():
            continue
        target = files_root / source.relative_to(base)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_symlink() or target.exists():
            if target.resolve() == source.resolve():
                saved.append(str(target))
                continue
            target.unlink()
        if policy == "now":
            shutil.copy2(source, target)
        else:
            try:
                target.symlink_to(source.absolute())
            except OSError:  # no symbolic links here: the bytes of now, as W&B falls back
                shutil.copy2(source, target)
        saved.append(str(target))
    return sorted(saved)


def files_to_keep(files_root: pathlib.Path) -> Iterator[tuple[str, str]]:
    """(path in the artifact, local path) of every file in the run's files folder; a link
    whose file is gone is skipped with a warning."""
    for dirpath, _, names in os.walk(files_root):
        for name in sorted(names):
            local = os.path.join(dirpath, name)
            if not os.path.isfile(local):
                logger.warning("Saved file %s is gone; it is not kept with the run.", local)
                continue
            yield pathlib.Path(local).relative_to(files_root).as_posix(), local


# ----- log_code -----------------------------------------------------------------------


def include_code(path: str) -> bool:
    """W&B's default: Python files, Dockerfiles and ``requirements.txt``."""
    name = os.path.basename(path)
    return name.endswith(".py") or name.startswith("Dockerfile") or name == "requirements.txt"


def exclude_wandb(path: str, root: str) -> bool:
    """W&B's default: nothing under ``<root>/wandb/`` or ``<root>/.wandb/``."""
    relative = os.path.relpath(path, root)
    return any(relative.startswith(folder + os.sep) for folder in _WANDB_DIRS)


def _call(fn: PathFilter, path: str, root: str) -> bool:
    # W&B calls a one-argument filter with the path only (its older API).
    if len(inspect.signature(fn).parameters) == 2:
        return bool(fn(path, root))  # type: ignore[call-arg]
    return bool(fn(path))  # type: ignore[call-arg]


def code_files(root: str, include_fn: PathFilter, exclude_fn: PathFilter) -> list[tuple[str, str]]:
    """(name in the artifact, local path) of the files ``log_code`` takes under *root*."""
    root = os.path.abspath(root)
    found: list[tuple[str, str]] = []
    for dirpath, _, names in os.walk(root):
        for name in sorted(names):
            path = os.path.join(dirpath, name)
            if _call(include_fn, path, root) and not _call(exclude_fn, path, root):
                found.append((pathlib.Path(os.path.relpath(path, root)).as_posix(), path))
    return found


def code_artifact_name(project: str) -> str:
    """W&B's default: ``source-<project>-<program path>`` made safe for an artifact name
    (``None`` for the program path when there is no program file, as in W&B)."""
    return _artifact_name_safe(f"source-{project}-{_program_relpath()}")


def _program_relpath() -> str | None:
    """The running program relative to its git repository's root (else the current
    folder), as W&B's settings find it."""
    main = sys.modules.get("__main__")
    program = getattr(main, "__file__", None)
    if not program:
        return None
    cwd = os.getcwd()
    root = _git_root(cwd) or cwd
    full = os.path.join(root, os.path.relpath(cwd, root), program)
    if not os.path.exists(full):
        return None
    relative = os.path.relpath(full, start=root)
    return None if "../" in relative else relative


def _git_root(start: str) -> str | None:
    folder = pathlib.Path(start)
    for candidate in (folder, *folder.parents):
        if (candidate / ".git").exists():
            return str(candidate)
    return None


def _artifact_name_safe(name: str) -> str:
    """W&B's ``make_artifact_name_safe``."""
    cleaned = re.sub(r"[^a-zA-Z0-9_\-.]", "_", name)
    if len(cleaned) <= 128:
        return cleaned
    return re.sub(r"(^.{63}).*(.{63}$)", r"\g<1>..\g<2>", cleaned)


def check_save_args(glob_str: Any) -> None:
    if not isinstance(glob_str, str | bytes | os.PathLike):
        raise ValidationError(f"save() takes a path or glob, not {type(glob_str).__name__}.")
