"""cvxnn: two-layer ReLU networks trained to certified global optimality through their exact
convex reformulations (Pilanci & Ergen), and certificates for networks trained elsewhere.

Canonical objective (no 1/n): NC = ½‖f(X) − y‖² + (β/2) Σ_j (‖u_j‖² + α_j²).
"""

from .certificate import Certificate, certify
from .estimators import ConvexReLUClassifier, ConvexReLURegressor
from .network import TwoLayerNet, load
from .patterns import Patterns, enumerate_patterns, network_patterns, sample_patterns
from .training import ConvexFit, fit

__all__ = [
    "Certificate",
    "ConvexFit",
    "ConvexReLUClassifier",
    "ConvexReLURegressor",
    "Patterns",
    "TwoLayerNet",
    "certify",
    "enumerate_patterns",
    "fit",
    "load",
    "network_patterns",
    "sample_patterns",
]
__version__ = "0.1.0"
