"""A real Prometheus (Debian's package) started per test, and a small reader of the text format.

Prometheus gets its own config (scrape targets on loopback, 1 s interval), its
own data directory and a free port; :meth:`Prometheus.wait_for` polls a PromQL
query until its result satisfies a predicate.
"""

from __future__ import annotations

import pathlib
import re
import shutil
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import yaml

from tests.support.ports import free_port
from tests.support.process import LoggedProcess

PROMETHEUS_BIN = shutil.which("prometheus")
SKIP_REASON = "the `prometheus` binary is missing (Debian package prometheus; scripts/install-tools.sh installs it)"


class Prometheus(LoggedProcess):
    what = "prometheus"

    def __init__(
        self,
        workdir: pathlib.Path,
        jobs: dict[str, tuple[str, str]],
        scrape_interval: str = "1s",
        config: dict[str, Any] | None = None,
    ) -> None:
        """``jobs``: job name -> (``host:port``, metrics path); or a whole ``config`` (a repo file, read in)."""
        assert PROMETHEUS_BIN is not None, SKIP_REASON
        self.port = free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        config = config or {
            "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
            "scrape_configs": [
                {"job_name": name, "metrics_path": path, "static_configs": [{"targets": [target]}]}
                for name, (target, path) in jobs.items()
            ],
        }
        config_path = workdir / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(config))
        super().__init__(
            [
                PROMETHEUS_BIN,
                f"--config.file={config_path}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--web.enable-lifecycle",
            ],
            workdir / "prometheus.log",
            self.url + "/-/ready",
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def query(self, promql: str) -> dict[str, Any]:
        """The ``data`` of an instant query; raises with Prometheus' own message on a bad query."""
        response = httpx.get(self.url + "/api/v1/query", params={"query": promql}, timeout=10)
        body = response.json()
        if body.get("status") != "success":
            raise AssertionError(f"PromQL {promql!r} failed: {body.get('errorType')}: {body.get('error')}")
        data: dict[str, Any] = body["data"]
        return data

    def wait_for(
        self, promql: str, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float = 20.0
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            result: list[dict[str, Any]] = self.query(promql)["result"]
            if predicate(result):
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting on {promql!r}; last result {result}")
            time.sleep(0.2)

    def targets_up(self) -> list[dict[str, Any]]:
        active: list[dict[str, Any]] = httpx.get(self.url + "/api/v1/targets", timeout=5).json()["data"][
            "activeTargets"
        ]
        return active


# --- the text exposition format, read back ----------------------------------------------------------

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')

Sample = tuple[str, tuple[tuple[str, str], ...], float]


def parse_text(text: str) -> tuple[dict[str, str], list[Sample]]:
    """``(family name -> TYPE, samples)``; every non-comment line must be a well-formed sample."""
    types: dict[str, str] = {}
    samples: list[Sample] = []
    for line in text.splitlines():
        if not line:
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            types[name] = kind
            continue
        if line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        assert match is not None, f"malformed sample line: {line!r}"
        labels = tuple(
            (k, v.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\"))
            for k, v in _LABEL.findall(match.group(3) or "")
        )
        samples.append((match.group(1), labels, float(match.group(4))))
    return types, samples


def exposed_names(text: str) -> set[str]:
    """Every name a query may use: sample names, and each declared family (with its histogram series names)."""
    types, samples = parse_text(text)
    names = {name for name, _, _ in samples}
    for name, kind in types.items():
        names.add(name)
        if kind == "histogram":
            names.update({name + "_bucket", name + "_sum", name + "_count"})
    return names


def value(samples: Sequence[Sample], name: str, **labels: str) -> float:
    """The one sample of ``name`` whose labels include ``labels``."""
    found = [v for n, ls, v in samples if n == name and all((k, w) in ls for k, w in labels.items())]
    assert len(found) == 1, f"{name}{labels}: {len(found)} samples"
    return found[0]
