"""scripts/bootstrap.sh on a "fresh machine": a PATH where only a stand-in apt-get lives."""

from __future__ import annotations

import shutil
import stat
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "bootstrap.sh"

# Logs every call with the DEBIAN_FRONTEND it saw. The first install fails (stale package
# lists, a network blip); later ones "install" the tools by creating stand-ins on PATH.
FAKE_APT = """#!/bin/sh
echo "$DEBIAN_FRONTEND|$*" >> "$FAKE_APT_LOG"
case " $* " in *" install "*) ;; *) exit 0 ;; esac
if [ ! -e "$FAKE_APT_LOG.failed" ]; then touch "$FAKE_APT_LOG.failed"; exit 100; fi
for tool in java mvn redis-server promtool docker-compose python3.11; do
  printf '#!/bin/sh\\nexit 0\\n' > "$FAKE_BIN/$tool"; chmod +x "$FAKE_BIN/$tool"
done
"""


def _bin(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("env", "id", "cat", "chmod", "touch"):
        found = shutil.which(tool)
        assert found, tool
        (bin_dir / tool).symlink_to(found)
    for name, text in (
        ("apt-get", FAKE_APT),
        ("sleep", "#!/bin/sh\nexit 0\n"),
        ("sudo", '#!/bin/sh\nexec "$@"\n'),
    ):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(stat.S_IRWXU)
    return bin_dir


def _run(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    bin_dir = _bin(tmp_path)
    log = tmp_path / "apt.log"
    env = {"PATH": str(bin_dir), "FAKE_APT_LOG": str(log), "FAKE_BIN": str(bin_dir)}
    bash = shutil.which("bash") or "/bin/bash"
    result = subprocess.run(
        [bash, str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=60
    )
    calls = log.read_text().splitlines() if log.exists() else []
    return result, calls


def test_installs_what_is_missing_non_interactively_retrying_after_an_update(
    tmp_path: Path,
) -> None:
    result, calls = _run(tmp_path)

    assert result.returncode == 0, result.stderr
    installs = [i for i, call in enumerate(calls) if "install" in call.partition("|")[2].split()]
    assert len(installs) == 2  # failed once, then succeeded
    assert any(
        "update" in calls[i].partition("|")[2].split() for i in range(installs[0] + 1, installs[1])
    )
    for call in calls:
        frontend, _, argv = call.partition("|")
        assert frontend == "noninteractive", call
        assert "DPkg::Lock::Timeout=" in argv, call  # waits for another apt's lock
    wanted = calls[installs[1]].split()
    for package in ("openjdk-17-jre-headless", "maven", "redis-server", "prometheus"):
        assert package in wanted
    assert "python3.11-venv" in wanted
    assert "--force-confold" in calls[installs[1]]


def test_python_mode_installs_only_python_and_its_venv(tmp_path: Path) -> None:
    result, calls = _run(tmp_path, "python")

    assert result.returncode == 0, result.stderr
    installs = [call for call in calls if "install" in call.partition("|")[2].split()]
    assert installs
    assert installs[-1].split()[-2:] == ["python3.11", "python3.11-venv"]
    assert "redis-server" not in installs[-1].split()


def test_nothing_to_do_touches_no_apt(tmp_path: Path) -> None:
    bin_dir = _bin(tmp_path)
    for tool in ("java", "mvn", "redis-server", "promtool", "docker-compose", "python3.11"):
        (bin_dir / tool).write_text("#!/bin/sh\nexit 0\n")
        (bin_dir / tool).chmod(stat.S_IRWXU)
    log = tmp_path / "apt.log"
    env = {"PATH": str(bin_dir), "FAKE_APT_LOG": str(log), "FAKE_BIN": str(bin_dir)}

    result = subprocess.run(
        [shutil.which("bash") or "/bin/bash", str(SCRIPT)], env=env, capture_output=True
    )

    assert result.returncode == 0
    assert not log.exists()
