"""``cimstats power``: simulation-based power for a two-level or mediation design written in YAML."""

from __future__ import annotations

import argparse
import inspect
from pathlib import Path

import yaml

from cimstats.cli._output import say

#: plan keys and what they mean (the arguments of cimstats.power with the same names)
KEYS = ("design", "effect", "outcome", "icc", "prevalence", "exposure_level", "binary_exposure", "a", "b",
        "c_prime", "a_moderation", "test", "missing", "n_clusters", "cluster_size", "nsim", "alpha", "seed")
EXAMPLE = """design: two_level        # or: mediation
outcome: continuous      # or: binary
effect: 0.3              # SDs of the outcome per SD of the exposure (log odds ratio for binary)
icc: 0.1
exposure_level: 2        # 1 = varies between members, 2 = between clusters
binary_exposure: true
n_clusters: [20, 30, 40, 60]
cluster_size: [5, 10]
nsim: 500
seed: 1
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "power",
        help="simulation-based power for a two-level or multilevel mediation design (YAML)",
        description=(
            "Simulate data sets from the design in PLAN for every combination of number of clusters and "
            "cluster size, fit the model to each and report the power with its Monte Carlo interval. OUT gets "
            "power.csv, power.html, power.md, power_curve.svg and .png, and result/ (the saved result). "
            "Finished chunks are kept in OUT/.checkpoint, so running the same command again after an "
            "interruption resumes. Example PLAN:\n\n" + EXAMPLE),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("plan", metavar="PLAN", help="the power plan (YAML file)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created if needed)")
    p.add_argument("--scheduler", metavar="ADDRESS", default=None,
                   help="run on an existing Dask cluster, e.g. tcp://host:8786 (default: this machine)")
    p.add_argument("--quiet", action="store_true", help="no progress line and no summary")
    p.set_defaults(func=run)


def read_power_plan(path: str | Path) -> dict:
    """Read and check a power plan: a YAML mapping with only the known keys."""
    from cimstats.errors import PlanError

    p = Path(path)
    if not p.is_file():
        raise PlanError(f"The power plan {p} does not exist; give the path of a YAML file.")
    try:
        plan = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise PlanError(f"The power plan {p} is not readable YAML ({exc.__class__.__name__}); fix the file.") from None
    if not isinstance(plan, dict):
        raise PlanError(f"The power plan {p} must be a mapping of keys such as design, effect and n_clusters.")
    unknown = [str(k) for k in plan if k not in KEYS]
    if unknown:
        raise PlanError(f"The power plan {p} has unknown key(s) {', '.join(unknown)}; known keys: {', '.join(KEYS)}.")
    return plan


def run(args: argparse.Namespace) -> int:
    from cimstats._files import atomic_write
    from cimstats._sheets import spreadsheet_safe_frame
    from cimstats.models.power import power
    from cimstats.render import render

    plan = read_power_plan(args.plan)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    kw = {k: v for k, v in plan.items() if k != "design"}
    accepted = set(inspect.signature(power).parameters)
    kw = {k: v for k, v in kw.items() if k in accepted}
    res = power(plan.get("design", "two_level"), client=args.scheduler, checkpoint=out / ".checkpoint",
                progress=False if args.quiet else None, **kw)
    atomic_write(out / "power.csv", spreadsheet_safe_frame(res.tidy()).to_csv(index=False))
    spec = res.to_table_spec()
    render(spec, out / "power.html")
    render(spec, out / "power.md")
    fig = res.plot()
    fig.save(out / "power_curve.svg")
    fig.save(out / "power_curve.png")
    res.save(out / "result")
    if not args.quiet:
        say(str(res.summary()), end="")
        say(f"Wrote power.csv, power.html, power.md, power_curve.svg/.png and result/ to {out}.")
    return 0


#: library arguments whose option has another name (error messages name the option)
API_FLAGS = {"client": "--scheduler"}
