"""Find the external programs the stack needs, failing with what to install."""

from __future__ import annotations

import os
import re
import shutil
import subprocess  # noqa: S404  # runs fixed local tools, never shell strings
from pathlib import Path

from streams.errors import StackError

MIN_JAVA = 17  # Kafka 4.x brokers need Java 17 or newer.


def find_java() -> str:
    """Path of ``java`` (``$JAVA_HOME/bin/java`` first), checked to be Java 17+."""
    java_home = os.environ.get("JAVA_HOME")
    candidate = None
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        candidate = str(Path(java_home) / "bin" / "java")
    candidate = candidate or shutil.which("java")
    if candidate is None:
        raise StackError(
            "java not found on PATH: Kafka needs Java 17+ "
            "(apt-get install openjdk-17-jre-headless, or run scripts/bootstrap.sh)"
        )
    version = java_major_version(candidate)
    if version is not None and version < MIN_JAVA:
        raise StackError(
            f"{candidate} is Java {version}, Kafka 4 needs Java {MIN_JAVA}+: "
            "install openjdk-17-jre-headless or point JAVA_HOME at a newer JDK"
        )
    return candidate


def java_major_version(java: str) -> int | None:
    """Major version reported by ``java -version`` (None if it cannot be read)."""
    try:
        out = subprocess.run(  # noqa: S603
            [java, "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not match:
        return None
    major = int(match.group(1))
    # Java 8 and older report "1.8.0_x".
    return int(match.group(2) or 0) if major == 1 else major


def find_mvn() -> str:
    """Path of ``mvn`` (needed once, to fetch the Kafka jars into the cache)."""
    mvn = shutil.which("mvn")
    if mvn is None:
        raise StackError(
            "mvn not found on PATH: Maven is needed once to fetch the Kafka jars "
            "(apt-get install maven, or run scripts/bootstrap.sh)"
        )
    return mvn


def find_redis_server(install: bool = True) -> str:
    """Path of Debian's ``redis-server``; installs the package with apt when root and allowed."""
    found = shutil.which("redis-server")
    if found:
        return found
    if install and os.geteuid() == 0 and shutil.which("apt-get"):
        _apt_install("redis-server")
        found = shutil.which("redis-server")
        if found:
            return found
    raise StackError(
        "redis-server not found on PATH and no Redis answers on the port: "
        "apt-get install redis-server (or run scripts/bootstrap.sh)"
    )


def _apt_install(package: str) -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", package]
    run = {"env": env, "stdin": subprocess.DEVNULL, "capture_output": True, "check": False}
    if subprocess.run(cmd, **run).returncode == 0:  # type: ignore[call-overload]  # noqa: S603
        return
    # Fresh machines may have no package lists yet: refresh once, then retry.
    subprocess.run(["apt-get", "update", "-q"], **run)  # type: ignore[call-overload]  # noqa: S603,S607
    result = subprocess.run(cmd, **run)  # type: ignore[call-overload]  # noqa: S603
    if result.returncode != 0:
        last = (result.stderr or result.stdout or b"").decode(errors="replace").strip()
        last = last.splitlines()[-1] if last else "unknown error"
        raise StackError(f"apt-get install {package} failed ({last}); install it by hand")
