"""The result of a PDV parameter sweep: one row per setting, the plateau of settings tied with the best, a heatmap."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from cirscope.query._methods import METHODS

if TYPE_CHECKING:  # pragma: no cover
    import plotly.graph_objects as go

__all__ = ["PDVSweep"]

#: How plots name the method: its label and full name, as the widgets show them.
_PDV_NAME = f"{METHODS['pdv'].title} ({METHODS['pdv'].full_name})"


@dataclass(frozen=True, eq=False)
class PDVSweep:
    """The result of :func:`~cirscope.eval.sweep_pdv`: one row per setting, the plateau and a heatmap.

    ``per_query`` holds the metric per setting (rows of ``table``) and per query; from it
    :meth:`plateau` finds every setting within noise of the best. Frozen; equality is
    identity (it holds a table).
    """

    table: pd.DataFrame
    metric: str
    mode: str
    per_query: np.ndarray | None = None

    def plateau(self, level: float = 0.95, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
        """The settings tied with the best: those whose paired bootstrap interval of (best - setting) reaches 0.

        On a flat surface this is many cells and the single :attr:`best` cell is a tie-break,
        not a finding. Returns the rows of :attr:`table` (a ``tied`` share of the grid is in
        ``attrs["share"]``).

        Examples
        --------
        >>> from cirscope.eval import make_shapes_benchmark, sweep_pdv
        >>> bench = make_shapes_benchmark(space.gallery.metadata, n_queries=20)
        >>> sweep = sweep_pdv(space, bench, alphas=[0, 1], betas=[0, 1], metric="R@1", progress=False)
        >>> flat = sweep.plateau()
        >>> bool(1 <= len(flat) <= 4 and sweep.best_score == flat["R@1"].max())
        True
        """
        from cirscope.eval._uncertainty import tied_with_best

        if self.per_query is None:
            raise ValueError("This sweep kept no per-query values; run sweep_pdv again to get a plateau")
        tied = tied_with_best(self.per_query, level, n_boot, seed)
        out = self.table[tied]
        out.attrs["share"] = float(tied.mean())
        out.attrs["level"] = level
        return out

    def _best_row(self) -> pd.Series:
        metrics = [c for c in self.table.columns if c not in ("alpha_t", "alpha_i", "beta")]
        tie_break = self.table[[c for c in metrics if c != self.metric]].sum(axis=1).to_numpy()
        order = np.lexsort((-tie_break, -self.table[self.metric].to_numpy()))
        return self.table.iloc[int(order[0])]

    @property
    def best(self) -> dict[str, float]:
        """The setting with the highest metric (ties: the highest sum of the other metrics, then sweep order)."""
        row = self._best_row()
        return {k: float(row[k]) for k in ("alpha_t", "alpha_i", "beta")}

    @property
    def best_score(self) -> float:
        return float(self.table[self.metric].max())

    def summary(self, level: float = 0.95) -> dict[str, object]:
        """The plateau in a few numbers: its size, the range of each parameter on it, and whether it is interior.

        ``interior`` is true when no tied setting lies on an edge of the grid (the smallest or
        largest swept value of any parameter): then the optimum is a real interior one, not
        an artefact of where the grid stops.

        Examples
        --------
        >>> from cirscope.eval import make_shapes_benchmark, sweep_pdv
        >>> bench = make_shapes_benchmark(space.gallery.metadata, n_queries=20)
        >>> s = sweep_pdv(space, bench, alphas=[0, 1], betas=[0, 1], metric="R@1", progress=False).summary()
        >>> sorted(s)
        ['alpha_i', 'alpha_t', 'best', 'best_score', 'beta', 'cells', 'interior', 'level', 'metric', 'of']
        """
        flat = self.plateau(level)
        params = ("alpha_t", "alpha_i", "beta")
        interior = True
        for p in params:
            lo, hi = self.table[p].min(), self.table[p].max()
            if lo < hi and (np.isclose(flat[p], lo).any() or np.isclose(flat[p], hi).any()):
                interior = False
        return {
            "metric": self.metric,
            "level": level,
            "best": self.best,
            "best_score": self.best_score,
            "cells": len(flat),
            "of": len(self.table),
            "interior": interior,
            **{p: [float(flat[p].min()), float(flat[p].max())] for p in params},
        }

    def figure(self) -> go.Figure:
        """A plotly heatmap of the metric: alpha x beta (tied), or alpha_t x alpha_i with a beta slider.

        White squares mark the plateau (every setting tied with the best, see :meth:`plateau`)
        when the sweep kept per-query values; a red x marks the tie-broken :attr:`best`.
        """
        import plotly.graph_objects as go

        t = self.table
        best = self.best
        flat = self.plateau() if self.per_query is not None else t.iloc[0:0]
        tied_name = f"within noise of the best ({len(flat)} of {len(t)} settings)"
        square = {"symbol": "square-open", "size": 16, "color": "white", "line": {"width": 2}}
        cross = {"symbol": "x", "size": 12, "color": "red"}
        if self.mode == "tied":
            pivot = t.pivot_table(index="beta", columns="alpha_t", values=self.metric)
            fig = go.Figure(
                go.Heatmap(
                    z=pivot.to_numpy(), x=pivot.columns.to_numpy(), y=pivot.index.to_numpy(),
                    colorscale="Viridis", colorbar={"title": self.metric},
                    hovertemplate="alpha=%{x}<br>beta=%{y}<br>" + self.metric + "=%{z:.3f}<extra></extra>",
                )
            )
            if len(flat):
                fig.add_trace(go.Scatter(x=flat["alpha_t"], y=flat["beta"], mode="markers", marker=square,
                                         name=tied_name))
            fig.add_trace(go.Scatter(x=[best["alpha_t"]], y=[best["beta"]], mode="markers", marker=cross,
                                     name=f"best {self.best_score:.3f} (a tie-break when the plateau is larger)"))
            fig.update_layout(
                title=f"{_PDV_NAME} {self.metric} (alpha_t = alpha_i = alpha)",
                xaxis_title="alpha", yaxis_title="beta", legend={"orientation": "h", "y": -0.2},
            )
            return fig
        betas = sorted(t["beta"].unique())
        fig = go.Figure()
        groups: list[float] = []  # the beta each trace belongs to (the slider shows one beta's traces)
        zmin, zmax = float(t[self.metric].min()), float(t[self.metric].max())
        for b in betas:
            pivot = t[t["beta"] == b].pivot_table(index="alpha_i", columns="alpha_t", values=self.metric)
            on = bool(np.isclose(b, best["beta"]))
            fig.add_trace(
                go.Heatmap(
                    z=pivot.to_numpy(), x=pivot.columns.to_numpy(), y=pivot.index.to_numpy(),
                    zmin=zmin, zmax=zmax, colorscale="Viridis", colorbar={"title": self.metric},
                    visible=on, name=f"beta={b:g}",
                    hovertemplate="alpha_t=%{x}<br>alpha_i=%{y}<br>" + self.metric + "=%{z:.3f}<extra></extra>",
                )
            )
            groups.append(b)
            here = flat[np.isclose(flat["beta"], b)]
            if len(here):
                fig.add_trace(go.Scatter(x=here["alpha_t"], y=here["alpha_i"], mode="markers", marker=square,
                                         visible=on, name=tied_name))
                groups.append(b)
            if on:
                fig.add_trace(go.Scatter(x=[best["alpha_t"]], y=[best["alpha_i"]], mode="markers", marker=cross,
                                         name=f"best {self.best_score:.3f}"))
                groups.append(b)
        steps = [
            {"method": "update", "label": f"{b:g}", "args": [{"visible": [g == b for g in groups]}]} for b in betas
        ]
        active = int(np.argmin([abs(b - best["beta"]) for b in betas]))
        fig.update_layout(
            title=f"{_PDV_NAME} {self.metric}; best {self.best_score:.3f} at {best}",
            xaxis_title="alpha_t", yaxis_title="alpha_i", legend={"orientation": "h", "y": -0.25},
            sliders=[{"active": active, "currentvalue": {"prefix": "beta = "}, "steps": steps}],
        )
        return fig

    def write_html(self, path: str | os.PathLike) -> Path:
        """Write the heatmap as a self-contained (offline) HTML file."""
        path = Path(path)
        self.figure().write_html(path, include_plotlyjs=True)
        return path
