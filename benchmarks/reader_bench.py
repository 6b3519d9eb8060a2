"""Reading speed of the built-in readers against plain `datasets` loading of the same files.

Our readers validate every record (and keep line numbers for errors); `datasets.Dataset.from_json`
/ `from_csv` validate nothing. Prints rows/s for both and the ratio.

    python benchmarks/reader_bench.py            # 200,000 pairs
    python benchmarks/reader_bench.py --quick    # 20,000 pairs
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
import time
from pathlib import Path


def write_files(folder: Path, rows: int) -> dict[str, Path]:
    jsonl = folder / "pairs.jsonl"
    with open(jsonl, "w", encoding="utf-8") as handle:
        for i in range(rows):
            handle.write(json.dumps({"anchor": f"what does clause {i} of the lease say?", "positive": f"clause {i} sets the rent, the deposit and the notice period"}) + "\n")
    csv_path = folder / "pairs.csv"
    with open(csv_path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["anchor", "positive"])
        for i in range(rows):
            writer.writerow([f"what does clause {i} of the lease say?", f"clause {i} sets the rent, the deposit and the notice period"])
    return {"jsonl": jsonl, "csv": csv_path}


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--quick", action="store_true", help="20,000 rows")
    args = parser.parse_args()
    rows = 20_000 if args.quick else args.rows

    import datasets

    from embedtune_core.data.loading import load_data
    from embedtune_core.plugins.registry import load_registry

    datasets.disable_progress_bars()
    _, registry = load_registry()
    with tempfile.TemporaryDirectory() as tmp:
        files = write_files(Path(tmp), rows)
        for fmt, path in files.items():
            ours = timed(lambda: load_data(registry, str(path), dataset_type="pairs"))
            cache = Path(tmp) / f"cache-{fmt}"
            loader = datasets.Dataset.from_json if fmt == "jsonl" else datasets.Dataset.from_csv
            theirs = timed(lambda: loader(str(path), cache_dir=str(cache), keep_in_memory=True))
            print(
                f"{fmt:5s} {rows:,} rows: embedtune (validated) {rows / ours:,.0f} rows/s, "
                f"datasets.Dataset.from_{'json' if fmt == 'jsonl' else 'csv'} {rows / theirs:,.0f} rows/s, "
                f"ratio {theirs / ours:.2f}x"
            )


if __name__ == "__main__":
    main()
