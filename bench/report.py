"""The benchmark report: JSON for machines, Markdown for people, a PNG chart
of throughput and latency against concurrency, and the README's summary."""

from __future__ import annotations

import json
import os
import platform
import re
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pika
import sqlalchemy as sa

from bench.core import Section
from ksmart_common import config

README_START = "<!-- bench:start -->"
README_END = "<!-- bench:end -->"


def machine() -> dict[str, Any]:
    memory_kib = 0
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                memory_kib = int(line.split()[1])
    cpu = platform.processor()
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    engine = sa.create_engine(config.admin_database_url(), poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        postgres = conn.execute(sa.text("SHOW server_version")).scalar()
    engine.dispose()
    connection = pika.BlockingConnection(pika.URLParameters(config.amqp_uri()))
    rabbitmq = connection._impl.server_properties.get("version", b"?")
    connection.close()
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(memory_kib / 1024 / 1024, 1),
        "cpu": cpu,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "postgresql": postgres,
        "rabbitmq": rabbitmq.decode() if isinstance(rabbitmq, bytes) else str(rabbitmq),
        "nameko": version("nameko"),
        "psycopg2": version("psycopg2-binary"),
        "pika": version("pika"),
    }


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}" if value < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _table(columns: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(value) for value in row) + " |" for row in rows]
    return lines


def ratio_rows(sections: list[Section]) -> list[list[Any]]:
    return [
        [
            ratio.name,
            _cell(ratio.ours),
            _cell(ratio.reference),
            f"{ratio.value:.2f}",
            f"≥ {ratio.target:g}",
            "met" if ratio.met else "**missed**",
        ]
        for section in sections
        for ratio in section.ratios
    ]


RATIO_COLUMNS = ["measure", "ours", "reference", "ratio", "target", ""]


def markdown(run: dict[str, Any], sections: list[Section]) -> str:
    info = run["machine"]
    lines = [
        f"# Benchmarks ({'quick smoke run' if run['quick'] else 'full run'}, {run['started_at']})",
        "",
        f"{info['cores']} cores, {info['memory_gib']} GiB, {info['cpu']}; Linux {info['kernel']};"
        f" Python {info['python']}, PostgreSQL {info['postgresql']}, RabbitMQ {info['rabbitmq']},"
        f" nameko {info['nameko']}, psycopg2 {info['psycopg2']}, pika {info['pika']}."
        f" Took {run['duration_s']:.0f} s (`make bench`).",
        "",
        "## Ratios against their targets",
        "",
        *_table(RATIO_COLUMNS, ratio_rows(sections)),
        "",
    ]
    for section in sections:
        lines += [f"## {section.title}", "", *_table(section.columns, section.rows), ""]
        lines += [f"- {note}" for note in section.notes]
        lines.append("")
    return "\n".join(lines)


def chart(sections: list[Section], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [
        (section, kind, points)
        for section in sections
        for kind, points in section.series.items()
        if points
    ]
    if not panels:
        return
    figure, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.5), squeeze=False)
    for axis, (section, kind, series) in zip(axes[0], panels, strict=True):
        for label, points in series.items():
            xs, ys = zip(*points, strict=True) if points else ((), ())
            axis.plot(xs, ys, marker="o", label=label)
        axis.set_title(f"{section.title.split(':')[0]}: {kind}")
        axis.set_xlabel(
            "events in the log" if kind == "replay" else "concurrency (writers or users)"
        )
        axis.set_ylabel("ms" if kind == "latency" else "per second")
        axis.set_xscale("log", base=2)
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write(run: dict[str, Any], sections: list[Section], folder: Path, stem: str) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {kind: folder / f"{stem}.{kind}" for kind in ("json", "md", "png")}
    document = {**run, "sections": [section.to_dict() for section in sections]}
    paths["json"].write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n")
    paths["md"].write_text(markdown(run, sections))
    chart(sections, paths["png"])
    return paths


def update_readme(
    readme: Path, run: dict[str, Any], sections: list[Section], paths: dict[str, Path]
) -> None:
    info = run["machine"]
    block = "\n".join(
        [
            README_START,
            f"Latest full run ({run['started_at']}, {info['cores']} cores,"
            f" {info['memory_gib']} GiB,"
            f" PostgreSQL {info['postgresql']}, RabbitMQ {info['rabbitmq']}); every figure beside"
            f" its reference measured in the same run. Details: [{paths['md'].as_posix()}]"
            f"({paths['md'].as_posix()}).",
            "",
            *_table(RATIO_COLUMNS, ratio_rows(sections)),
            "",
            f"![Throughput and latency against concurrency]({paths['png'].as_posix()})",
            README_END,
        ]
    )
    text = readme.read_text()
    pattern = re.compile(re.escape(README_START) + ".*?" + re.escape(README_END), re.S)
    readme.write_text(
        pattern.sub(lambda _: block, text)
        if pattern.search(text)
        else text.rstrip() + "\n\n## Benchmarks\n\n" + block + "\n"
    )
