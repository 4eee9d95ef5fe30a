"""The :class:`Figure` result type shared by every plot, and deterministic output.

A figure is drawn once with matplotlib (object-oriented API, no global
``pyplot`` state) and then written as SVG, PNG or PDF. Output is made
reproducible: the SVG element ids come from a fixed hash salt, no creation
dates or software versions are written into SVG/PDF/PNG metadata, and text is
kept as text in SVG (``svg.fonttype = "none"``) so that labels are searchable,
selectable and read by screen readers.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd

from cimstats._files import atomic_write
from cimstats.errors import RenderError

__all__ = ["Figure", "RC", "FORMATS", "new_figure", "type_error"]

#: matplotlib settings used while a figure is built and written.
RC = {
    "svg.hashsalt": "cimstats",
    "svg.fonttype": "none",
    "svg.image_inline": True,
    "pdf.fonttype": 42,
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Arial", "Liberation Sans"],
    "font.size": 9.0,
    "axes.titlesize": 10.0,
    "axes.labelsize": 9.0,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "path.simplify": True,
    "text.usetex": False,
    "text.parse_math": False,  # labels are data: "$" and "_" are written as they are
}

#: file suffix -> matplotlib format name
FORMATS = {".svg": "svg", ".png": "png", ".pdf": "pdf"}

# no dates, no software versions: byte-identical re-runs
_METADATA = {
    "svg": {"Date": None, "Creator": None},
    "pdf": {"CreationDate": None, "ModDate": None, "Producer": None, "Creator": None},
    "png": {"Software": None},
}

# Okabe-Ito colours (readable with the common colour-vision deficiencies)
COLOURS = {
    "black": "#000000", "orange": "#E69F00", "sky": "#56B4E9", "green": "#009E73",
    "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00", "purple": "#CC79A7",
    "grey": "#7F7F7F",
}


def _mpl():
    import matplotlib

    return matplotlib


def new_figure(width: float, height: float):
    """A matplotlib figure not registered with pyplot (no global state, no GUI)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure as MplFigure

    fig = MplFigure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def type_error(function: str, argument: str, obj, accepted: str) -> RenderError:
    """The one-sentence error for an object a figure function cannot draw."""
    return RenderError(
        f"`{function}()` got `{argument}` of type {type(obj).__name__}; it accepts {accepted}, "
        f"so pass one of those (figures draw fitted results and never fit models themselves)."
    )


@dataclass(frozen=True, eq=False)
class Figure:
    """A finished figure: write it as SVG, PNG or PDF, or show it in a notebook.

    Attributes
    ----------
    title : str
        Short title (also the SVG ``<title>``).
    alt_text : str
        One or two sentences describing what the figure shows, for the
        ``alt`` attribute of an HTML ``<img>`` and for screen readers.
    data : pandas.DataFrame
        The tidy table that was drawn (one row per plotted element), so every
        number in the figure can be checked or re-plotted.
    kind : str
        ``forest``, ``caterpillar``, ``path_diagram`` or ``invariance``.

    Examples
    --------
    >>> import pandas as pd
    >>> from cimstats.render.figures import forest_plot
    >>> t = pd.DataFrame({"label": ["a", "b"], "estimate": [0.2, -0.1],
    ...                   "ci_lower": [0.1, -0.3], "ci_upper": [0.3, 0.1]})
    >>> fig = forest_plot(t, title="Two estimates")
    >>> fig.svg() == fig.svg()
    True
    >>> fig.png(dpi=50)[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
    True
    """

    title: str
    alt_text: str
    data: pd.DataFrame = field(repr=False)
    kind: str
    _draw: Callable = field(repr=False)

    # ------------------------------------------------------------ drawing
    def to_matplotlib(self):
        """A new matplotlib ``Figure`` with this plot, for further styling by hand."""
        with _mpl().rc_context(RC):
            return self._draw()

    def _bytes(self, fmt: str, dpi: float | None = None) -> bytes:
        import warnings

        buf = io.BytesIO()
        with _mpl().rc_context(RC), warnings.catch_warnings():
            if fmt == "svg":
                # SVG keeps text as text: the reader's fonts draw it, so a glyph missing from
                # the layout font does not matter there
                warnings.filterwarnings("ignore", message="Glyph .* missing from font")
            fig = self._draw()
            fig.savefig(buf, format=fmt, dpi=dpi if dpi is not None else 100, metadata=_METADATA[fmt],
                        bbox_inches="tight", pad_inches=0.08, facecolor="white")
        data = buf.getvalue()
        if fmt == "svg":
            data = _accessible_svg(data.decode("utf-8"), self.title, self.alt_text).encode("utf-8")
        return data

    def svg(self) -> str:
        """The figure as an SVG document (text kept as text; byte-identical for the same input)."""
        return self._bytes("svg").decode("utf-8")

    def png(self, dpi: float = 150) -> bytes:
        """The figure as PNG bytes at ``dpi`` dots per inch."""
        if not isinstance(dpi, (int, float)) or isinstance(dpi, bool) or not 10 <= dpi <= 1200:
            raise RenderError(f"`dpi` is {dpi!r}; expected a number from 10 to 1200, e.g. 150 for screens or 300 for print.")
        return self._bytes("png", float(dpi))

    def pdf(self) -> bytes:
        """The figure as PDF bytes (fonts embedded, no creation date)."""
        return self._bytes("pdf")

    def save(self, path: str | os.PathLike, *, dpi: float = 300) -> Path:
        """Write the figure to ``path``; the format follows the suffix (.svg, .png or .pdf).

        The file is written atomically: a reader never sees half a file, and
        a failure leaves any previous file in place.

        Returns
        -------
        pathlib.Path
            The written path.
        """
        path = Path(path)
        fmt = FORMATS.get(path.suffix.lower())
        if fmt is None:
            raise RenderError(
                f"Cannot tell the figure format of '{path}' (suffix {path.suffix!r}); "
                f"use a file name ending in .svg, .png or .pdf."
            )
        payload = self.png(dpi=dpi) if fmt == "png" else self._bytes(fmt)
        return atomic_write(path, payload, error=RenderError)

    def html(self, *, caption: str | None = None) -> str:
        """An HTML ``<figure>`` with the SVG inline and a ``<figcaption>`` (default: the title).

        The SVG carries ``role="img"``, a ``<title>`` and a ``<desc>`` with the
        alt text, so screen readers announce it; the page needs no network
        fetches.
        """
        from xml.sax.saxutils import escape

        svg = self.svg()
        svg = svg[svg.find("<svg "):]
        cap = escape(self.title if caption is None else caption)
        return (f'<figure class="cimstats-figure cimstats-{self.kind}">\n{svg}'
                f'<figcaption>{cap}</figcaption>\n</figure>\n')

    # ------------------------------------------------------------ notebooks
    def _repr_svg_(self) -> str:
        return self.svg()

    def __repr__(self) -> str:
        return f"Figure(kind={self.kind!r}, title={self.title!r})"


def _accessible_svg(svg: str, title: str, alt: str) -> str:
    """Give the SVG root a role, a <title> and a <desc> (read by screen readers)."""
    import hashlib
    from xml.sax.saxutils import escape

    key = hashlib.sha1((title + "\n" + alt).encode("utf-8")).hexdigest()[:10]
    start = svg.find("<svg ")
    end = svg.find(">", start)
    if start < 0 or end < 0:
        return svg
    head = svg[start:end]
    extra = f' role="img" aria-labelledby="fig-{key}-title fig-{key}-desc"'
    inner = (f'\n <title id="fig-{key}-title">{escape(title)}</title>'
             f'\n <desc id="fig-{key}-desc">{escape(alt)}</desc>')
    return svg[:start] + head + extra + svg[end:end + 1] + inner + svg[end + 1:]
