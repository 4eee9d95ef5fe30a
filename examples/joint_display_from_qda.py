"""From a REFI-QDA project (.qdpx, exported by NVivo, ATLAS.ti or MAXQDA) to a joint display.

Usage: python examples/joint_display_from_qda.py PROJECT.qdpx [OUTDIR]

The two most used top-level codes become themes through an editable mapping table; each
interview source is a case; the case-oriented display shows every case's coded themes with
a quote, written to Word, Excel and HTML.
"""

import sys
import tempfile
from pathlib import Path

import pandas as pd

import cimstats
from cimstats.integrate import theme_codebook_from_dict, excerpts_from_qdpx, mapping_template

if len(sys.argv) < 2:
    sys.exit("usage: python examples/joint_display_from_qda.py PROJECT.qdpx [OUTDIR]")
project = cimstats.read_qdpx(sys.argv[1])
out = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(tempfile.mkdtemp(prefix="cimstats-example-"))
out.mkdir(parents=True, exist_ok=True)
print(f"{len(project.codes)} codes, {len(project.codings)} coded selections, {len(project.sources)} sources")

# a mapping table a user would edit: here the two top-level codes with most codings below them
mapping_template(project).to_csv(out / "code-to-theme.csv", index=False)
codes, codings = project.codes, project.codings
top = codes.loc[codes["level"] == 0, ["guid", "name", "path"]]
top = top.assign(n=[int(codings["code_path"].str.startswith(p).sum()) for p in top["path"]])
chosen = top.nlargest(2, "n")
themes = [{"id": f"T{i + 1}", "name": name, "direction": "none"} for i, name in enumerate(chosen["name"])]
book = theme_codebook_from_dict({"themes": themes})
excerpts = excerpts_from_qdpx(project, {row.path: t["id"] for row, t in zip(chosen.itertuples(), themes)},
                              codebook=book)

cases = (excerpts.groupby("case_id").size().rename("n_excerpts").reset_index())
display = cimstats.joint_display(kind="case_oriented", codebook=book, excerpts=excerpts, cases=cases,
                                 id="case_id", profile={"n_excerpts": "Coded excerpts"},
                                 title="Themes per interview")
for ext in ("docx", "xlsx", "html"):
    display.render(out / f"case-display.{ext}")
print(display.table.to_frame().head().to_string())
print(f"Displays written to {out}")
