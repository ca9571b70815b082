"""linsim: exact training trajectories of linear models, embedded with InPCA.

Data flows one way::

    data -> solvers -> Trajectory (outputs at checkpoints) -> probabilities
         -> linsim.inpca (distances, InPCA) -> metrics / sweeps -> plots, CLI

Subpackages and modules
-----------------------
linsim.data        synthetic inputs with a prescribed correlation spectrum, teachers, digits
linsim.solvers     closed-form / ODE / SGD training trajectories
linsim.trajectory  the one trajectory type every solver returns
linsim.inpca       Bhattacharyya distances, InPCA, information geometry
"""

__version__ = "0.1.0"
