"""Ego-network measures from a table of named network members, and change between waves.

Usage: python examples/network_measures.py [OUTDIR]
"""

from _common import output_folder

from cimstats import networks
from cimstats.datasets import demo_study

out = output_folder()
study = demo_study(seed=1)

# one row per named network member (alter) per wave; the patient table supplies every ego,
# so patients who named nobody keep a network of size 0; the alter-alter tie table (which pairs
# of members know each other) adds density, effective size, constraint and brokerage roles
net = networks.ego_networks(study.alters, egos=study.patients, ties=study.alter_ties)
wide = networks.ego_measures(net)              # one row per patient and wave
print(wide[["patient_id", "wave", "size", "n_tie_types", "weak_tie_share", "iqv"]].head())
print(wide[["patient_id", "wave", "size", "effective_size", "constraint", "n_brokered_pairs", "n_liaison"]].head())
print(networks.measure_catalogue().head(12).to_string())   # each measure with its definition

# brokerage roles by circle of closeness instead of tie type
by_circle = networks.brokerage(net, group="circle")
print(by_circle[["patient_id", "wave", "n_itinerant", "n_liaison", "p_liaison"]].head())

# alters added, lost and retained, and support roles re-allocated, baseline to follow-up
change = networks.change(net, waves=(0, 1))
print(change.egos[["patient_id", "n_retained", "n_lost", "n_added", "role_change_index"]].head())

wide.to_csv(out / "ego_measures.csv", index=False)
change.egos.to_csv(out / "network_change.csv", index=False)
print(f"Network measures written to {out}")
