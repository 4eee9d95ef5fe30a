"""A table describing every ego-level network measure (for methods sections and codebooks)."""

from __future__ import annotations

import pandas as pd

from cimstats.measures.networks.core import SUPPORT, TIE_TYPES

#: Gould-Fernandez brokerage roles of an undirected ego network (see :func:`~cimstats.networks.brokerage`)
BROKER_ROLES = ("coordinator", "itinerant", "gatekeeper_representative", "liaison")

_ROWS = [
    ("size", "size", "Number of named alters.", "0"),
    ("composition", "n_<type>", "Alters of that tie type.", "0"),
    ("composition", "p_<type>", "n_<type> / size.", "missing (undefined)"),
    ("heterogeneity", "n_tie_types", "Number of distinct tie types named (role diversity).", "0"),
    ("heterogeneity", "blau", "Blau's index 1 - sum p_k^2 over tie types.", "missing (undefined)"),
    ("heterogeneity", "iqv", "blau / (1 - 1/K), K = number of tie types (0-1).", "missing (undefined)"),
    ("ei_index", "n_internal", "Alters of internal tie types (default partner, family).", "0"),
    ("ei_index", "n_external", "Alters of external tie types (default all others except pet).", "0"),
    ("ei_index", "ei_index", "(external - internal) / (external + internal), -1 to +1.", "missing (undefined)"),
    ("weak_tie_share", "n_weak", "Alters who are weak ties.", "0"),
    ("weak_tie_share", "weak_tie_share", "n_weak / size.", "missing (undefined)"),
    ("group_ties", "n_group_ties", "Ties to groups or organisations.", "0"),
    ("group_ties", "any_group_tie", "1 when the ego names a group or organisation.", "0"),
    ("group_ties", "group_tie_share", "n_group_ties / size.", "missing (undefined)"),
    ("circles", "n_circle_<c>", "Alters in circle c (1 inner, 2 middle, 3 outer).", "0"),
    ("circles", "mean_contact_freq", "Mean contact frequency over alters with a known value.", "missing (undefined)"),
    ("circles", "n_coresident", "Alters living with the ego.", "0"),
    ("support_work", "n_<kind>", "Alters doing that kind of support work.", "0"),
    ("support_work", "p_<kind>", "n_<kind> / alters with a known value.", "missing (undefined)"),
    ("support_work", "n_<kind>_<type>", "Providers of that kind who are of that tie type.", "0"),
    ("support_work", "share_<kind>_<type>", "n_<kind>_<type> / n_<kind>.", "missing (undefined)"),
    ("support_work", "n_providers", "Alters doing any support work.", "0"),
    ("support_work", "n_multiplex", "Alters doing two or more kinds of support work.", "0"),
    ("support_work", "mean_roles", "Kinds of support work per alter.", "missing (undefined)"),
    ("structure", "n_alter_ties", "Ties among the ego's alters.", "0"),
    ("structure", "density", "n_alter_ties / (size (size - 1) / 2).", "missing (fewer than 2 alters)"),
    ("structure", "effective_size", "Burt's effective size, size - 2 n_alter_ties / size (Borgatti 1997); "
                                    "1 for 1 alter.", "0"),
    ("structure", "efficiency", "effective_size / size.", "missing (undefined)"),
    ("structure", "constraint", "Burt's constraint sum_j (p_ej + sum_q p_eq p_qj)^2 (Burt 1992); 1 for 1 alter.",
     "missing (undefined)"),
    ("brokerage", "n_brokered_pairs", "Pairs of alters not tied to each other, between whom the ego brokers: "
                                      "size (size - 1) / 2 - n_alter_ties; 0 for fewer than 2 alters.", "0"),
    ("brokerage", "n_coordinator", "Brokered pairs with both alters in the ego's own group (Gould and Fernandez "
                                   "1989; only with ego_group).", "0"),
    ("brokerage", "n_itinerant", "Brokered pairs with both alters in one group that is not the ego's (Gould and "
                                 "Fernandez 1989; within-group brokerage).", "0"),
    ("brokerage", "n_gatekeeper_representative", "Brokered pairs with one alter in the ego's own group and the "
                                                 "other not (Gould and Fernandez 1989; only with ego_group).", "0"),
    ("brokerage", "n_liaison", "Brokered pairs with the alters in two different groups, neither the ego's (Gould "
                               "and Fernandez 1989; between-group brokerage).", "0"),
    ("brokerage", "p_<role>", "n_<role> / brokered pairs whose alters' groups are known; missing for fewer than 2 "
                              "alters or without such a pair.", "missing (undefined)"),
    ("brokerage", "n_brokered_unknown", "Brokered pairs with an alter whose group is missing (in no role).", "0"),
    ("processes", "n_knowledge", "Alters who share knowledge and experiences of the illness.", "0"),
    ("processes", "p_knowledge", "n_knowledge / alters with a known value.", "missing (undefined)"),
    ("processes", "early_help_share", "Share of alters with a known onset of help who began to help before or at "
                                      "the diagnosis or health event.", "missing (undefined)"),
    ("processes", "mean_alter_trust", "Mean trust in the alters (1-5) over alters with a known value.",
     "missing (undefined)"),
    ("processes", "n_alter_ties_reported", "Ties among the ego's alters from each alter's reported number of "
                                           "other alters known (half the sum).", "0"),
    ("processes", "effective_size_reported", "Burt's effective size from the reported ties, size - 2 t / size.",
     "0"),
    ("processes", "efficiency_reported", "effective_size_reported / size.", "missing (undefined)"),
]


def measure_catalogue(*, expand: bool = False) -> pd.DataFrame:
    """Every ego-level measure with its definition and its value for egos without alters.

    Parameters
    ----------
    expand : bool
        Expand ``<type>``, ``<kind>``, ``<c>`` and ``<role>`` placeholders into
        one row per tie type, support kind, circle and brokerage role (defaults:
        the seven tie types, three kinds, circles 1-3, the four roles).

    Returns
    -------
    DataFrame
        Columns ``function, column, definition, without_alters``.

    Examples
    --------
    >>> from cimstats import networks
    >>> cat = networks.measure_catalogue()
    >>> cat.loc[cat["column"] == "blau", "without_alters"].item()
    'missing (undefined)'
    """
    df = pd.DataFrame(_ROWS, columns=["function", "column", "definition", "without_alters"])
    if not expand:
        return df
    rows = []
    for r in df.itertuples(index=False):
        kinds = list(SUPPORT) if "<kind>" in r.column else [None]
        roles = list(BROKER_ROLES) if "<role>" in r.column else [None]
        types = list(TIE_TYPES) if "<type>" in r.column else [None]
        circles = ["1", "2", "3"] if "<c>" in r.column else [None]
        for k in kinds:
            for t in types:
                for c in circles:
                    for b in roles:
                        col = (r.column.replace("<kind>", k or "").replace("<type>", t or "")
                               .replace("<c>", c or "").replace("<role>", b or ""))
                        rows.append((r.function, col, r.definition, r.without_alters))
    return pd.DataFrame(rows, columns=df.columns)
