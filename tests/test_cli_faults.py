"""I/O faults as a user meets them: a full disk, a read-only lake, a folder without write
permission, a missing lake, a config file that is not UTF-8. Each is one line on stderr and
exit status 2, never a traceback, and no dataset is visible half-written.

The faults are real: a forked child enters its own mount namespace and mounts a small tmpfs
(full: ENOSPC) or remounts it read-only (EROFS), or drops to user nobody (EACCES). This needs
root (as these tests run here and in CI); without it those tests are skipped, saying so."""

from __future__ import annotations

import codecs
import ctypes
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from demandops.cli import main

CLONE_NEWNS = 0x00020000


def _forked(setup: Callable[[], None], argv: list[str], after: Callable[[], object]) -> dict:
    """Run `main(argv)` in a forked child after `setup()`; its exit status, stderr, and what
    `after()` found (in the child, which sees its own mounts)."""
    out = Path(tempfile.mkdtemp(prefix="faults-"))
    os.chmod(out, 0o777)  # the child may drop to user nobody
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 99
        try:
            sys.stderr = open(out / "stderr", "w")  # noqa: SIM115 - closed by the exit below
            os.dup2(sys.stderr.fileno(), 2)
            setup()
            code = main(argv)
            (out / "after.json").write_text(json.dumps(after()))
        except BaseException:
            (out / "crash").write_text(traceback.format_exc())
        finally:
            sys.stderr.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    try:
        crash = (out / "crash").read_text() if (out / "crash").exists() else ""
        assert not crash, crash
        return {
            "code": os.waitstatus_to_exitcode(status),
            "stderr": (out / "stderr").read_text(),
            "after": json.loads((out / "after.json").read_text()),
        }
    finally:
        shutil.rmtree(out)


def _private_mounts() -> None:
    if ctypes.CDLL(None, use_errno=True).unshare(CLONE_NEWNS) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS)")
    subprocess.run(["mount", "--make-rprivate", "/"], check=True)


def _tmpfs(where: Path, size: int, options: str = "") -> None:
    where.mkdir(parents=True, exist_ok=True)
    extra = f",{options}" if options else ""
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}{extra}", "tmpfs", str(where)],
                   check=True)  # fmt: skip


@pytest.fixture(scope="module")
def can_mount(tmp_path_factory: pytest.TempPathFactory) -> None:
    probe = tmp_path_factory.mktemp("probe")

    def setup() -> None:
        _private_mounts()
        _tmpfs(probe / "disk", 64 * 1024)

    try:
        result = _forked(setup, ["condition", "--lake", "/nonexistent/lake"], lambda: None)
    except AssertionError as exc:  # the child could not make its own mounts
        pytest.skip(f"no private mount namespace here (needs root): {str(exc)[-200:]}")
    assert result["code"] == 2  # no raw data there: the mounts worked


def _one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("demandops: error: "), stderr
    assert "Traceback" not in stderr
    return lines[0]


def _committed(lake: Path) -> dict[str, object]:
    """What a reader of the lake sees: temp files left over, datasets whose manifest lists a
    file that is missing or differs, and how many datasets are committed."""
    temps = [str(p) for p in lake.rglob("*.tmp-*")]
    broken, count = [], 0
    for manifest in lake.rglob("manifest.json"):
        count += 1
        for name, meta in json.loads(manifest.read_text()).get("files", {}).items():
            data = (manifest.parent / name).read_bytes()
            if hashlib.sha256(data).hexdigest() != meta["sha256"]:
                broken.append(str(manifest.parent / name))
    return {"temps": temps, "broken": broken, "datasets": count}


def test_a_full_disk_is_one_line_and_nothing_half_committed(
    can_mount: None, tiny_raw_lake: Path, tmp_path: Path
) -> None:
    disk = tmp_path / "disk"
    pages = sum(
        -(-p.stat().st_size // 4096) * 4096 for p in tiny_raw_lake.rglob("*") if p.is_file()
    )
    size = pages + 96 * 1024  # the raw files and a little more: conditioning runs out

    def setup() -> None:
        _private_mounts()
        _tmpfs(disk, size)
        shutil.copytree(tiny_raw_lake, disk / "lake")

    result = _forked(
        setup, ["condition", "--lake", str(disk / "lake"), "--quiet"], lambda: _committed(disk)
    )
    assert result["code"] == 2
    line = _one_line(result["stderr"])
    assert "no space left on the device: " + str(disk / "lake") in line
    assert result["after"]["temps"] == [] and result["after"]["broken"] == []


def test_a_read_only_lake_is_one_line(can_mount: None, tiny_raw_lake: Path, tmp_path: Path) -> None:
    disk = tmp_path / "ro"

    def setup() -> None:
        _private_mounts()
        _tmpfs(disk, 8 * 2**20)
        shutil.copytree(tiny_raw_lake, disk / "lake")
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)

    result = _forked(
        setup, ["condition", "--lake", str(disk / "lake"), "--quiet"], lambda: _committed(disk)
    )
    assert result["code"] == 2
    line = _one_line(result["stderr"])
    assert f"the file system is read-only: {disk / 'lake'}" in line and "writable --lake" in line
    assert result["after"] == {"temps": [], "broken": [], "datasets": 0}


def test_a_lake_without_write_permission_is_one_line(tiny_raw_lake: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to drop to user nobody")
    base = Path(tempfile.mkdtemp(prefix="faults-lake-"))
    try:
        shutil.copytree(tiny_raw_lake, base / "lake")
        for folder in [base, *(p for p in base.rglob("*") if p.is_dir())]:
            folder.chmod(0o555)  # readable by everyone, writable by no one but root

        def nobody() -> None:
            codecs.lookup("utf-8-sig")  # imported now: nobody cannot read a Python under /root
            os.setgid(65534)
            os.setuid(65534)

        result = _forked(
            nobody, ["condition", "--lake", str(base / "lake"), "--quiet"], lambda: None
        )
    finally:
        for folder in [base, *(p for p in base.rglob("*") if p.is_dir())]:
            folder.chmod(0o755)
        shutil.rmtree(base)
    assert result["code"] == 2
    assert "permission denied: " + str(base / "lake") in _one_line(result["stderr"])


def test_a_missing_lake_is_one_line_and_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "typo" / "lake"
    assert main(["condition", "--lake", str(missing), "--quiet"]) == 2
    assert f"no raw data in {missing}/raw/stores" in _one_line(capsys.readouterr().err)
    assert not (tmp_path / "typo").exists()


@pytest.mark.parametrize(
    "command",
    [["models", "list"], ["models", "show", "r.large.fast"], ["lineage", "run-x"],
     ["models", "rollback", "r.large.fast"]],
)  # fmt: skip
def test_a_registry_command_on_a_missing_lake_is_one_line_and_creates_nothing(
    tmp_path: Path, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "typo" / "lake"
    assert main([*command, "--lake", str(missing)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert f"no model registry at {missing}/mlflow.db" in line and "--lake" in line
    assert not (tmp_path / "typo").exists()


@pytest.fixture
def config(tmp_path: Path) -> Iterator[Path]:
    root = Path(__file__).resolve().parent.parent / "config"
    copy = tmp_path / "config"
    shutil.copytree(root, copy)
    yield copy


@pytest.mark.parametrize("name", ["pipeline.yaml", "environments/dev.yaml", "regions.yaml"])
def test_a_config_file_that_is_not_utf8_is_one_line(
    config: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = config / name
    path.write_bytes(path.read_bytes() + b"\n# caf\xe9 in latin-1\n")
    assert main(["condition", "--config", str(config), "--lake", "/nonexistent"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert f"{path}: not UTF-8 text (byte 0xe9 at offset" in line


def test_a_registry_file_that_is_not_a_database_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lake = tmp_path / "lake"
    lake.mkdir()
    garbage = b"not a database\n" * 100
    (lake / "mlflow.db").write_bytes(garbage)
    assert main(["models", "list", "--lake", str(lake)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "registry" in line and "file is not a database" in line
    assert (lake / "mlflow.db").read_bytes() == garbage


def test_a_reader_that_goes_away_stops_the_command_quietly(tmp_path: Path) -> None:
    """`demandops … | head`: output into a closed pipe is no error message and no traceback."""
    command = [sys.executable, "-m", "demandops.cli", "generate", "--lake", str(tmp_path)]
    command += ["--region", "pnw", "--products", "2", "--weeks", "60", "--quiet"]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert child.stdout is not None and child.stderr is not None
    child.stdout.close()  # before the command has printed anything
    stderr = child.stderr.read().decode()
    assert child.wait(timeout=120) == 141, stderr
    assert stderr == ""
