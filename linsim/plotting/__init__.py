"""Figures of linsim: InPCA embeddings, eigenvalue ladders, explained stress, phase diagrams.

Every function either draws on an ``ax=`` (or ``fig=``) the caller passes, or builds a
free-standing :class:`matplotlib.figure.Figure` and returns it.  The library never uses
pyplot's global state and never changes the matplotlib backend: save a figure with
``fig.savefig(path)``, or display it in a notebook (``%matplotlib inline``).

Panels (return the Axes they drew on)
    :func:`eigenvalue_ladder`, :func:`stress_curve`, :func:`embedding_3d`, :func:`phase_map`, :func:`phase_curve`
Figures (return the Figure)
    :func:`ribbon_figure`, :func:`phase_figure`
"""

from linsim.plotting.embedding import embedding_3d, ribbon_figure
from linsim.plotting.phase import axis_label, phase_curve, phase_figure, phase_map
from linsim.plotting.spectrum import eigenvalue_ladder, stress_curve

__all__ = ["axis_label", "phase_curve", "eigenvalue_ladder", "embedding_3d", "phase_figure",
           "phase_map", "ribbon_figure", "stress_curve"]
