"""The result of a PDV parameter sweep: one row per setting, the best setting and a heatmap."""

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
    """The result of :func:`~cirscope.eval.sweep_pdv`: one row per setting, the best one and a heatmap.

    Frozen; equality is identity (it holds a table).
    """

    table: pd.DataFrame
    metric: str
    mode: str

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

    def figure(self) -> go.Figure:
        """A plotly heatmap of the metric: alpha x beta (tied), or alpha_t x alpha_i with a beta slider."""
        import plotly.graph_objects as go

        t = self.table
        best = self.best
        if self.mode == "tied":
            pivot = t.pivot_table(index="beta", columns="alpha_t", values=self.metric)
            fig = go.Figure(
                go.Heatmap(
                    z=pivot.to_numpy(),
                    x=pivot.columns.to_numpy(),
                    y=pivot.index.to_numpy(),
                    colorscale="Viridis",
                    colorbar={"title": self.metric},
                    hovertemplate="alpha=%{x}<br>beta=%{y}<br>" + self.metric + "=%{z:.3f}<extra></extra>",
                )
            )
            fig.add_trace(
                go.Scatter(
                    x=[best["alpha_t"]], y=[best["beta"]], mode="markers",
                    marker={"symbol": "x", "size": 14, "color": "red"}, name=f"best {self.best_score:.3f}",
                )
            )
            fig.update_layout(
                title=f"{_PDV_NAME} {self.metric} (alpha_t = alpha_i = alpha)",
                xaxis_title="alpha", yaxis_title="beta",
            )
            return fig
        betas = sorted(t["beta"].unique())
        fig = go.Figure()
        zmin, zmax = float(t[self.metric].min()), float(t[self.metric].max())
        for b in betas:
            pivot = t[t["beta"] == b].pivot_table(index="alpha_i", columns="alpha_t", values=self.metric)
            fig.add_trace(
                go.Heatmap(
                    z=pivot.to_numpy(), x=pivot.columns.to_numpy(), y=pivot.index.to_numpy(),
                    zmin=zmin, zmax=zmax, colorscale="Viridis", colorbar={"title": self.metric},
                    visible=bool(np.isclose(b, best["beta"])), name=f"beta={b:g}",
                    hovertemplate="alpha_t=%{x}<br>alpha_i=%{y}<br>" + self.metric + "=%{z:.3f}<extra></extra>",
                )
            )
        steps = [
            {"method": "update", "label": f"{b:g}", "args": [{"visible": [j == i for j in range(len(betas))]}]}
            for i, b in enumerate(betas)
        ]
        active = int(np.argmin([abs(b - best["beta"]) for b in betas]))
        fig.update_layout(
            title=f"{_PDV_NAME} {self.metric}; best {self.best_score:.3f} at {best}",
            xaxis_title="alpha_t", yaxis_title="alpha_i",
            sliders=[{"active": active, "currentvalue": {"prefix": "beta = "}, "steps": steps}],
        )
        return fig

    def write_html(self, path: str | os.PathLike) -> Path:
        """Write the heatmap as a self-contained (offline) HTML file."""
        path = Path(path)
        self.figure().write_html(path, include_plotlyjs=True)
        return path
