"""Static analysis speed: specs per second for parse + check + analyze in one process, and the
cold-process time of `mvitdsl check SPEC` (which never imports torch). Medians, with the ratio
to the targets (> 1 means the target is met).

    .venv/bin/python benchmarks/analysis.py                 # specs/mvit_b.mv
    .venv/bin/python benchmarks/analysis.py --spec specs/mvitv2_s.mv --runs 21
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import mvitdsl  # noqa: E402

TARGET_SPECS_PER_S = 200.0
TARGET_COLD_S = 0.5


def specs_per_second(path: Path, rounds: int, per_round: int) -> list[float]:
    """Rounds of `per_round` full parse + lower + check + analyze runs from the file's text."""
    text = path.read_text()
    mvitdsl.analyze(mvitdsl.load_spec(text=text))  # warm: builds the Lark parser once per process
    rates = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(per_round):
            mvitdsl.analyze(mvitdsl.load_spec(text=text))
        rates.append(per_round / (time.perf_counter() - start))
    return rates


def cold_check_seconds(path: Path, runs: int) -> list[float]:
    """Wall time of a fresh `python -m mvitdsl check PATH` process, start to exit."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        r = subprocess.run([sys.executable, "-m", "mvitdsl", "check", str(path)],
                           capture_output=True, text=True, cwd=ROOT)
        times.append(time.perf_counter() - start)
        if r.returncode != 0:
            raise SystemExit(f"check failed:\n{r.stderr}")
    return times


def torch_free(path: Path) -> bool:
    script = (f"import sys; from mvitdsl.cli import main; main(['check', {str(path)!r}]); "
              "print('torch' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT)
    return r.stdout.strip().endswith("False")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--spec", type=Path, default=ROOT / "specs" / "mvit_b.mv")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--per-round", type=int, default=50)
    p.add_argument("--runs", type=int, default=11, help="cold processes")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    rates = specs_per_second(args.spec, args.rounds, args.per_round)
    colds = cold_check_seconds(args.spec, args.runs)
    rate, cold = statistics.median(rates), statistics.median(colds)
    result = {
        "spec": str(args.spec.relative_to(ROOT) if args.spec.is_relative_to(ROOT) else args.spec),
        "specs_per_s_median": round(rate, 1), "specs_per_s_min": round(min(rates), 1),
        "specs_per_s_target": TARGET_SPECS_PER_S, "specs_per_s_ratio": round(rate / 200, 2),
        "cold_check_s_median": round(cold, 3), "cold_check_s_max": round(max(colds), 3),
        "cold_check_s_target": TARGET_COLD_S, "cold_check_ratio": round(TARGET_COLD_S / cold, 2),
        "check_imports_torch": not torch_free(args.spec),
        "rounds": args.rounds, "per_round": args.per_round, "cold_runs": args.runs,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{result['spec']}: parse + check + analyze in process: {rate:.0f} specs/s median "
          f"(min {min(rates):.0f}; {args.rounds} rounds x {args.per_round}); target "
          f"{TARGET_SPECS_PER_S:.0f}, ratio {rate / TARGET_SPECS_PER_S:.2f}x")
    print(f"cold `mvitdsl check`: {cold:.3f} s median (max {max(colds):.3f}; {args.runs} runs); "
          f"target {TARGET_COLD_S} s, ratio {TARGET_COLD_S / cold:.2f}x; torch imported: "
          f"{result['check_imports_torch']}")


if __name__ == "__main__":
    main()
