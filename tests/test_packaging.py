"""Packaging: a built wheel ships adaloss.integrations, and ``import adaloss`` stays light."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Never copied into the build tree: environments, VCS data, build outputs, caches, run outputs.
_SKIP = (
    ".git",
    ".venv",
    "venv",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    "*.pyc",
    ".pytest_cache",
    ".ruff_cache",
    ".hypothesis",
    "runs",
    "data",
    "*.pt",
    "*.whl",
)


def _env(**extra: str) -> dict[str, str]:
    """The current environment without anything that would put the checkout on sys.path."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1", PYTHONNOUSERSITE="1")
    env.update(extra)
    return env


def _run(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 120) -> str:
    proc = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert proc.returncode == 0, f"{args}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
    return proc.stdout


def _python(code: str, cwd: Path, env: dict[str, str]) -> str:
    return _run([sys.executable, "-c", textwrap.dedent(code)], cwd, env)


def _setuptools_usable() -> bool:
    """Whether the wheel can be built offline with the running interpreter's setuptools."""
    if importlib.util.find_spec("setuptools") is None:
        return False
    import setuptools

    return int(setuptools.__version__.split(".")[0]) >= 68  # pyproject's build requirement


@pytest.mark.slow
def test_wheel_installs_and_imports_integrations(tmp_path: Path):
    # Build from a copy so the checkout gets no build/ or egg-info side effects.
    src = tmp_path / "src"
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(*_SKIP))
    wheels, target, cwd = tmp_path / "wheels", tmp_path / "site", tmp_path / "cwd"
    cwd.mkdir()
    env = _env()

    pip = [sys.executable, "-m", "pip"]
    # Offline and fast with the interpreter's setuptools; otherwise pip fetches it in isolation.
    offline = ["--no-build-isolation", "--no-index"] if _setuptools_usable() else []
    _run([*pip, "wheel", "--no-deps", *offline, "-w", str(wheels), str(src)], cwd, env)
    (wheel,) = wheels.glob("adaloss-*.whl")
    _run(
        [*pip, "install", "--no-deps", "--no-index", "--target", str(target), str(wheel)], cwd, env
    )

    out = _python(
        """
        import sys
        import adaloss
        import adaloss.integrations.timm as integration
        import timm

        print(adaloss.__file__)
        print(integration.__file__)
        print(",".join(timm.list_models("adaloss_*")))
        """,
        cwd,
        _env(PYTHONPATH=str(target)),
    )
    adaloss_file, integration_file, names = out.strip().splitlines()[-3:]
    assert Path(adaloss_file).resolve().is_relative_to(target.resolve())
    assert Path(integration_file).resolve().is_relative_to(target.resolve() / "adaloss")
    assert "adaloss_resnet18_cifar" in names.split(",")


def test_import_adaloss_does_not_import_heavy_optional_dependencies(tmp_path: Path):
    import adaloss

    package_root = Path(adaloss.__file__).resolve().parents[1]
    out = _python(
        """
        import sys
        import adaloss

        print("heavy:" + ",".join(m for m in ("matplotlib", "sklearn", "timm") if m in sys.modules))
        """,
        tmp_path,
        _env(PYTHONPATH=str(package_root)),
    )
    assert out.strip().splitlines()[-1] == "heavy:"
