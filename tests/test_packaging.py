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


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built once from a copy so the checkout gets no build/ or egg-info."""
    tmp_path = tmp_path_factory.mktemp("wheel")
    src, wheels = tmp_path / "src", tmp_path / "wheels"
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(*_SKIP))
    # Offline and fast with the interpreter's setuptools; otherwise pip fetches it in isolation.
    offline = ["--no-build-isolation", "--no-index"] if _setuptools_usable() else []
    pip = [sys.executable, "-m", "pip"]
    _run([*pip, "wheel", "--no-deps", *offline, "-w", str(wheels), str(src)], tmp_path, _env())
    (built,) = wheels.glob("adaloss-*.whl")
    return built


def _install(wheel: Path, target: Path, cwd: Path) -> None:
    pip = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index"]
    _run([*pip, "--target", str(target), str(wheel)], cwd, _env())


@pytest.mark.slow
def test_wheel_installs_and_imports_integrations(wheel: Path, tmp_path: Path):
    target, cwd = tmp_path / "site", tmp_path / "cwd"
    cwd.mkdir()
    _install(wheel, target, cwd)

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


HEAVY = ("timm", "torchvision", "sklearn", "matplotlib", "scipy")


def _core_dependencies(wheel_site: Path) -> list[str]:
    """The requirements the installed wheel declares outside any extra."""
    from importlib import metadata

    from packaging.requirements import Requirement

    (info,) = wheel_site.glob("adaloss-*.dist-info")
    requires = metadata.Distribution.at(info).requires or []
    reqs = [Requirement(r) for r in requires]
    return [r.name for r in reqs if r.marker is None or r.marker.evaluate({"extra": ""})]


def _link_installed_closure(names: list[str], folder: Path) -> None:
    """Links to the installed files of ``names`` and everything they require, and nothing else:
    a site-packages as ``pip install adaloss`` (no extras) would leave it, without a download."""
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    folder.mkdir()
    queue, seen = [Requirement(n) for n in names], set()
    while queue:
        req = queue.pop()
        key = canonicalize_name(req.name)
        if key in seen or (req.marker is not None and not req.marker.evaluate({"extra": ""})):
            continue
        seen.add(key)
        dist = metadata.distribution(req.name)
        queue += [Requirement(r) for r in dist.requires or []]
        for file in dist.files or []:
            top = file.parts[0]
            if top in ("..", "__pycache__") or (folder / top).exists():
                continue
            source = Path(dist.locate_file(top))
            if source.exists():
                (folder / top).symlink_to(source)


@pytest.mark.slow
def test_wheel_with_only_core_dependencies_steps_and_imports_nothing_heavy(
    wheel: Path, tmp_path: Path, capsys
):
    target, core, cwd = tmp_path / "site", tmp_path / "core", tmp_path / "cwd"
    cwd.mkdir()
    _install(wheel, target, cwd)
    assert sorted(_core_dependencies(target)) == ["torch", "torchopt", "tqdm"]
    _link_installed_closure(_core_dependencies(target), core)
    # -S: no site-packages of this interpreter, only the wheel and the core's dependencies.
    env = _env(PYTHONPATH=os.pathsep.join([str(target), str(core)]))
    script = f"""
        import importlib.util, sys
        missing = [m for m in {HEAVY!r} if importlib.util.find_spec(m) is None]
        print("missing:" + ",".join(missing))
        import torch
        import adaloss

        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
        base = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        task = adaloss.Classification(3)
        opt = adaloss.MetaLossOptimizer(model, base, task, meta_lr=1e-3, recipe="paper")
        x, y = torch.randn(16, 4), torch.randint(0, 3, (16,))
        assert opt.initialize([(x, y)], steps=2, progress=True)  # the offline phase and tqdm
        theta = [p.detach().clone() for p in model.parameters()]
        phi = [p.detach().clone() for p in opt.loss.parameters()]
        result = opt.step(x, y, x, y)
        assert result.meta_updated and not result.skipped
        assert not all(torch.equal(a, b) for a, b in zip(theta, model.parameters()))
        assert not all(torch.equal(a, b) for a, b in zip(phi, opt.loss.parameters()))
        heavy = {HEAVY!r} + ("adaloss.bench", "adaloss.integrations")
        print("loaded:" + ",".join(sorted(m for m in sys.modules if m.startswith(heavy))))
        print("file:" + adaloss.__file__)
        """
    out = _run([sys.executable, "-S", "-c", textwrap.dedent(script)], cwd, env).splitlines()
    assert f"missing:{','.join(HEAVY)}" in out  # the environment really is core-only
    assert "loaded:" in out
    (file,) = [line[len("file:") :] for line in out if line.startswith("file:")]
    assert Path(file).resolve().is_relative_to(target.resolve())

    # The command: tables need nothing more; a figure names the one pip line that adds it.
    results = REPO / "results" / "regression"
    command = [sys.executable, "-S", "-m", "adaloss"]
    table = _run([*command, "table", str(results)], cwd, env)
    from adaloss.bench.cli import main

    capsys.readouterr()
    assert main(["table", str(results)]) == 0
    assert table == capsys.readouterr().out  # the same numbers as with every extra installed
    proc = subprocess.run(
        [*command, "plot", str(results), "--out", str(tmp_path / "figures")],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        "adaloss: matplotlib is not installed; to fix: pip install 'adaloss[bench]'"
    )


def test_the_bench_extra_and_the_commands_install_hint_agree():
    """Every module the command turns into the pip hint comes from the `bench` extra."""
    tomllib = pytest.importorskip("tomllib")
    from packaging.requirements import Requirement

    from adaloss.bench.extras import BENCH_INSTALL, BENCH_MODULES

    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    import_names = {"scikit-learn": "sklearn"}

    def names(extra: str) -> set[str]:
        out = set()
        for spec in extras[extra]:
            req = Requirement(spec)
            if req.name == "adaloss":
                out |= set().union(*(names(e) for e in req.extras))
            else:
                out.add(import_names.get(req.name, req.name))
        return out

    assert names("bench") == BENCH_MODULES
    assert names("timm") == {"timm", "torchvision"}
    assert names("dev") >= BENCH_MODULES | {"pytest", "hypothesis", "ruff", "build"}
    assert BENCH_INSTALL == "pip install 'adaloss[bench]'"


def test_every_package_in_the_tree_is_listed_for_the_wheel():
    tomllib = pytest.importorskip("tomllib")
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    roots = {"adaloss": REPO / "adaloss", "adaloss.integrations": REPO / "integrations"}
    assert config["package-dir"] == {"adaloss.integrations": "integrations"}
    found = {
        ".".join([name, *init.parent.relative_to(root).parts])
        for name, root in roots.items()
        for init in root.rglob("__init__.py")
    }
    assert set(config["packages"]) == found
