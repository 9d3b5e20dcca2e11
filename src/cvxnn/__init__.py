"""cvxnn: two-layer ReLU networks trained to certified global optimality through their exact
convex reformulations (Pilanci & Ergen), and certificates for networks trained elsewhere.

Canonical objective (no 1/n): NC = ½‖f(X) − y‖² + (β/2) Σ_j (‖u_j‖² + α_j²).
"""

from .activations import Activation, activation_from
from .certificate import Certificate, certify
from .estimators import ConvexReLUClassifier, ConvexReLURegressor
from .network import TwoLayerNet, load
from .pattern_search import SearchOptions, SearchReport, certify_with_search, column_generation_fit, \
    search_violations
from .path import PathResult, path
from .patterns import Patterns, enumerate_patterns, network_patterns, sample_patterns
from .stationarity import stationarity_certificate
from .training import ConvexFit, NonconvexInit, fit
from .trajectory import convex_along_trajectory, train_with_trajectory

__all__ = [
    "Activation",
    "Certificate",
    "ConvexFit",
    "ConvexReLUClassifier",
    "ConvexReLURegressor",
    "NonconvexInit",
    "PathResult",
    "Patterns",
    "SearchOptions",
    "SearchReport",
    "TwoLayerNet",
    "activation_from",
    "certify",
    "certify_with_search",
    "column_generation_fit",
    "convex_along_trajectory",
    "enumerate_patterns",
    "fit",
    "load",
    "network_patterns",
    "path",
    "sample_patterns",
    "search_violations",
    "stationarity_certificate",
    "train_with_trajectory",
]
__version__ = "0.1.0"
