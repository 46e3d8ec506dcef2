"""Benchmark: the cost of loading a desired-state folder per document, from 10 to 5,000 documents (issue 12).

For each size a folder is generated with bench/plan.py's generator, every kind scaled together
(3 in 10 documents resources, 4 in 10 config variables in files of 20, 2 in 10 apps each with a
source folder, 1 in 10 groups, two environments), committed to a Git repository, and loaded with
``loader.load`` from the working directory (``reconciler validate``) and from the Git tree (a new
revision in the daemon). Each figure is the CPU time of this process (not wall-clock time, which
on a shared machine includes waiting for a core), the fastest of several runs, in-process; the
per-document cost is that time divided by the number of documents, and its spread across sizes
is the figure of merit (goal: within 1.5x from the smallest to the largest folder).

    .venv/bin/python bench/loader.py [--sizes 10,50,100,500,1000,2000,5000] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchkit import argument_parser, code_version, load_average, machine, quiet_logs, reproduce, write_section
from plan import generate

from reconciler.desired import loader
from reconciler.source import workspace
from reconciler.source.repository import Repository
from reconciler.source.trees import DirectoryTree

HEADING = "## Loading the desired state: cost per document"


def folder_of(base: Path, documents: int) -> tuple[Path, int]:
    repo = base / f"docs-{documents}"
    folder = repo / "desired-state"
    count = generate(folder, resources=max(1, documents * 3 // 10), config=max(1, documents * 4 // 10),
                     groups=max(2, documents // 10), apps=max(1, documents * 2 // 10))
    workspace.init(repo)
    workspace.commit_all(repo, f"{count} documents")
    return repo, count


def fastest_seconds(run: Callable[[], object], budget: float = 3.0, least: int = 5, most: int = 200) -> float:
    times: list[float] = []
    spent = 0.0
    while len(times) < least or (spent < budget and len(times) < most):
        start = time.process_time()
        run()
        times.append(time.process_time() - start)
        spent += times[-1]
    return min(times)


def measure(base: Path, sizes: list[int]) -> list[tuple[int, float, float]]:
    rows = []
    for documents in sizes:
        repo, count = folder_of(base, documents)
        folder = repo / "desired-state"
        state = loader.load(DirectoryTree(folder))
        if state.document_count() != count:
            raise SystemExit(f"generated {count} documents, loaded {state.document_count()}")
        repository = Repository(str(repo))
        head = repository.branch_head("main")
        directory = fastest_seconds(lambda folder=folder: loader.load(DirectoryTree(folder)))  # type: ignore[misc]
        git = fastest_seconds(lambda r=repository, h=head: loader.load(r.tree(h, "desired-state")))  # type: ignore[misc]
        rows.append((count, directory, git))
        print(f"{count:>6} documents: working tree {directory * 1000:.1f} ms ({directory / count * 1e6:.0f} us/doc), "
              f"Git tree {git * 1000:.1f} ms ({git / count * 1e6:.0f} us/doc)", flush=True)
    return rows


def section(rows: list[tuple[int, float, float]], command: str, load: str) -> str:
    def spread(column: int) -> float:
        per_document = [r[column] / r[0] for r in rows]
        return max(per_document) / min(per_document)

    table = "\n".join(
        f"| {count} | {directory * 1000:.1f} ms | {directory / count * 1e6:.0f} µs | {git * 1000:.1f} ms | "
        f"{git / count * 1e6:.0f} µs |"
        for count, directory, git in rows
    )
    verdicts = ", ".join(f"{name} {spread(column):.2f}x ({'met' if spread(column) <= 1.5 else '**missed**'})"
                         for name, column in (("working tree", 1), ("Git tree", 2)))
    return f"""{HEADING}

Issue 12's loader scaling, on {machine()}; load average {load}; code: {code_version()}.

`loader.load` in-process (what `reconciler validate` and every new revision in the daemon run
before anything else), on generated folders with every kind scaled together: 3 in 10 documents
resources, 4 in 10 config variables (20 per file), 2 in 10 apps each with a source folder, 1 in 10
groups, two environments. CPU time of the process, the fastest of repeated runs (at least 5, about
3 s per size): wall-clock medians moved with the shared machine's load from one size to the next.

| documents | working tree | per document | Git tree | per document |
|---:|---:|---:|---:|---:|
{table}

Largest over smallest per-document cost (goal: within 1.5x): {verdicts}. Before this change the
loader checked every file against every App's folder and scanned every entry once per App and
Database: per document, 3 times as many Python calls at 600 documents as at 60 (counted by
`tests/test_loader_scaling.py`, which now requires them flat).

{reproduce(command)}"""


def main() -> None:
    parser = argument_parser(__doc__)
    parser.add_argument("--sizes", default="10,50,100,500,1000,2000,5000")
    parser.add_argument("--write", type=Path, help="update this Markdown file's section")
    args = parser.parse_args()
    quiet_logs()
    before = load_average()
    base = Path(tempfile.mkdtemp(prefix="reconciler-loader-"))
    try:
        rows = measure(base, [int(s) for s in args.sizes.split(",")])
    finally:
        shutil.rmtree(base, ignore_errors=True)
    if args.write:
        command = f".venv/bin/python bench/loader.py --sizes {args.sizes} --write {args.write}"
        write_section(args.write, HEADING, section(rows, command, f"{before} before, {load_average()} after"))
        print(f"wrote {args.write}")


if __name__ == "__main__":
    main()
