"""Ego-network measures from name-generator data (egos, alters, alter-alter ties).

Build the checked network table once with :func:`ego_networks`, then compute
measures; each is vectorised over all egos (``numpy.bincount`` on integer ego
positions, no loop per ego):

- :func:`size`, :func:`composition`, :func:`heterogeneity` (Blau, IQV),
  :func:`ei_index`, :func:`weak_tie_share`, :func:`group_ties`, :func:`circles`;
- :func:`support_work` (who does illness, everyday and emotional work);
- :func:`structure` (density, effective size, efficiency, constraint; needs ties);
- :func:`brokerage` (Gould-Fernandez brokerage roles of the ego between unconnected alters; needs ties);
- :func:`processes` (knowledge exchange, onset of help, trust, and brokerage from each
  alter's reported number of other alters known);
- :func:`change` between waves (added, lost, retained; roles gained and dropped);
- :func:`typology` (k-means types, number chosen by silhouette, seeded);
- :func:`measure_catalogue` (definition of every column, and its value without alters);
- :func:`ego_measures` (wide, one row per ego: join to the survey) and
  :func:`alter_table` (long, one row per alter: multilevel models).

Examples
--------
>>> import pandas as pd
>>> from cimstats import networks
>>> egos = pd.DataFrame({"patient_id": ["A", "B", "C"], "wave": 0})
>>> alters = pd.DataFrame({"patient_id": ["A", "A", "A", "B"], "wave": 0, "alter_id": [1, 2, 3, 4],
...                        "tie_type": ["partner", "family", "weak_tie", "friend"]})
>>> net = networks.ego_networks(alters, egos=egos)
>>> networks.ego_measures(net)[["patient_id", "size", "n_family", "ei_index"]]
  patient_id  size  n_family  ei_index
0          A   3.0       1.0 -0.333333
1          B   1.0       0.0  1.000000
2          C   0.0       0.0       NaN
"""

from cimstats.measures.networks.catalogue import measure_catalogue
from cimstats.measures.networks.change import NetworkChange, change, change_columns
from cimstats.measures.networks.core import (
    SUPPORT,
    TIE_TYPES,
    EgoNetworks,
    NetworkColumns,
    ego_networks,
)
from cimstats.measures.networks.measures import (
    alter_table,
    brokerage,
    circles,
    composition,
    ego_measures,
    ei_index,
    group_ties,
    heterogeneity,
    processes,
    size,
    structure,
    support_work,
    weak_tie_share,
)
from cimstats.measures.networks.typology import Typology, typology

__all__ = ["EgoNetworks", "NetworkChange", "NetworkColumns", "SUPPORT", "TIE_TYPES", "Typology",
           "alter_table", "brokerage", "change", "change_columns", "circles", "composition", "ego_measures", "ego_networks", "ei_index",
           "group_ties", "heterogeneity", "measure_catalogue", "processes", "size", "structure", "support_work", "typology", "weak_tie_share"]
