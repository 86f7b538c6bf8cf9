"""The image builds the native OTLP encoder the way scripts/build-native.sh does, and ships only its wheel.

No Docker engine runs here, so the image is not built: the Dockerfile is parsed and held to
the script (the same files, the same PEP 517 build of ./native), and the runtime stage to what
it must install. Building that wheel and loading it is what `bash scripts/build-native.sh`
does for the tests of the native encoder (tests/test_encoder_native.py).
"""

from __future__ import annotations

import pathlib
import re
import shlex
from dataclasses import dataclass, field

REPO = pathlib.Path(__file__).resolve().parents[1]


@dataclass
class Stage:
    image: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def args(self, instruction: str) -> list[str]:
        return [rest for op, rest in self.instructions if op == instruction]


def stages() -> list[Stage]:
    text = re.sub(r"\\\n", " ", (REPO / "Dockerfile").read_text())  # continuation lines joined
    out: list[Stage] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        op, _, rest = line.partition(" ")
        if op == "FROM":
            image, _, name = rest.partition(" AS ")
            out.append(Stage(image.strip(), name.strip() or None))
        else:
            out[-1].instructions.append((op, rest.strip()))
    return out


def test_a_rust_stage_builds_the_native_wheel_from_the_files_the_build_script_hashes() -> None:
    builder, runtime = stages()
    assert builder.name == "native"
    assert re.fullmatch(r"rust:\d+\.\d+\.\d+-slim-(\w+)", builder.image), builder.image
    assert builder.image.rsplit("-", 1)[1] == runtime.image.rsplit("-", 1)[1], "one Debian for both stages"
    script = (REPO / "scripts" / "build-native.sh").read_text()
    (hashed,) = re.findall(r"sum=\$\(cat ([^|]+)\|", script)
    hashed_files = {path.removeprefix("native/").split("/")[0] for path in hashed.split()}
    copied = set()
    for arguments in builder.args("COPY"):
        *sources, target = shlex.split(arguments)
        assert target.startswith("./native")
        copied |= {source.removeprefix("native/").split("/")[0] for source in sources}
    assert copied == hashed_files == {"Cargo.toml", "Cargo.lock", "pyproject.toml", "src"}
    # The script installs ./native with pip (maturin through PEP 517); the image makes the same build a wheel.
    assert re.search(r"-m pip install --quiet \./native", script)
    (build,) = [run for run in builder.args("RUN") if "./native" in run]
    assert re.search(r"pip wheel --no-deps --wheel-dir /wheels \./native$", build), build


def test_the_runtime_stage_installs_that_wheel_and_checks_it_loads() -> None:
    _, runtime = stages()
    assert runtime.name is None
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+", runtime.image), runtime.image
    assert "--from=native /wheels /wheels" in runtime.args("COPY")
    (install,) = [run for run in runtime.args("RUN") if "pip install" in run]
    assert '".[redis]" /wheels/*.whl' in install
    assert 'python -c "import otel_bridge_native"' in install
    assert not any("cargo" in run or "rustc" in run for run in runtime.args("RUN")), "no compiler at run time"


def test_the_build_context_carries_the_native_sources_but_not_cargo_s_target() -> None:
    ignored = {line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()}
    assert "native/target" in ignored
    assert not {"native", "native/", "native/src"} & ignored
