"""``cimstats networks``: ego-level (wide) and alter-level (long) network measures."""

from __future__ import annotations

from cimstats.cli.cmd_score import read_table, write_table
from cimstats.cli._output import say


def _run(args) -> int:
    from cimstats.measures import networks

    alters = read_table(args.alters)
    egos = read_table(args.egos)
    ties = read_table(args.ties) if args.ties else None
    columns = {"ego": args.ego_column}
    if args.no_wave:
        columns["wave"] = None
    net = networks.ego_networks(alters, egos=egos, ties=ties, columns=columns)
    wide = networks.ego_measures(net)
    say(f"{net.n_egos} egos, {net.n_alters} alters; mean size {wide['size'].mean():.2f}; "
          f"{int((wide['size'] == 0).sum())} egos without alters")
    if len(net.report):
        say(net.report.summary())
    if args.out:
        write_table(wide, args.out)
        say(f"wrote ego-level measures to {args.out}")
    if args.long:
        write_table(networks.alter_table(net), args.long)
        say(f"wrote alter-level table to {args.long}")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("networks", help="ego-network measures from name-generator data",
                              description="Compute ego-level network measures (size, composition, diversity, "
                                          "weak ties, support work, structure, brokerage) and the alter-level table.")
    p.add_argument("alters", help="alter table (one row per named network member per wave)")
    p.add_argument("--egos", required=True, help="ego (patient) table: egos without alters get size 0")
    p.add_argument("--ties", help="optional alter-alter tie table (ego, alter_a, alter_b): adds density, "
                   "effective size, constraint and brokerage roles")
    p.add_argument("--ego-column", default="patient_id", help="ego id column (default patient_id)")
    p.add_argument("--no-wave", action="store_true", help="treat the data as a single wave")
    p.add_argument("--out", help="ego-level output (.csv or .parquet)")
    p.add_argument("--long", help="alter-level output (.csv or .parquet)")
    p.set_defaults(func=_run)


#: library arguments whose option has another name (error messages name the option)
API_FLAGS = {"columns": "--ego-column"}
