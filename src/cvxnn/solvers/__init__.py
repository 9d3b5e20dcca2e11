"""Solvers of the convex programs. Each returns a :class:`~cvxnn.solvers.reference.SolverOutput`."""
