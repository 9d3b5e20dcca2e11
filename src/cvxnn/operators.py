"""The matrix-free pattern operator of the convex programs (THEORY §1.1, §1.5, §1.6).

For an activation σ(t) = a(t)_+ + b(t)_- the fit weights are W_i = aD_i + b(I − D_i), and with
S_i = 2D_i − I:

    A(U)  = Σ_i W_i X u_i = (a − b) Σ_i D_i X u_i + b X Σ_i u_i        (U: P x d  →  n)
    Aᵀ(r) = [Xᵀ W_i r]_i = [(a − b) Xᵀ D_i r + b Xᵀ r]_i               (r: n  →  P x d)
    G(U)  = [S_i X u_i]_i = S ⊙ (X Uᵀ)                                  (U: P x d  →  n x P)
    Gᵀ(M) = [Xᵀ S_i m_i]_i = (S ⊙ M)ᵀ X                                  (M: n x P  →  P x d)

G(U) ≥ 0 iff every u_i lies in its cone K(D_i). Never forms D_i X. With M the (n, P) 0/1 matrix
whose column i is the diagonal of D_i, the pattern sums are one matrix product each, so they run
at the dense matmul rate:

    Σ_i D_i X u_i = rowsum((M U) ∘ X)        (M U: n x d)
    [Xᵀ D_i r]_i = Mᵀ (r ∘ X)                (r ∘ X: row k scaled by r_k)

Vector outputs (THEORY §1.7): blocks U of shape (P, d, c) and residuals R of shape (n, c) use the same
two products with U as the (P, d·c) matrix [vec U_i]_i and R ∘ X as the (n, d·c) matrix of the outer
products x_k r_kᵀ:

    Σ_i D_i X U_i = [x_kᵀ (M U)_k]_k  ((M U)_k: row k viewed as d x c)      [Xᵀ D_i R]_i = Mᵀ (R ∘ X)

and the cone map acts on every column: G(U) = [S_i X U_i[:, k]]_{i,k} (n x P x c), Gᵀ(M) = [Xᵀ S_i M_{:,i,k}]_{i,k}.

M is kept in the compute dtype when it fits in ``MASK_CACHE_BYTES``; otherwise each chunk of
samples is converted from the boolean masks when used, so memory stays O(chunk · P) beyond X,
the masks and the n x P arguments and results of G and Gᵀ themselves. The signs S = 2M − 1 are kept
too when M and S fit together: G and Gᵀ then multiply by S (S ⊙ Z) instead of selecting Z or −Z by
the masks, the same values about 4x faster (n = 569, P = 97: 0.09 ms against 0.37 ms per product).
"""

from __future__ import annotations

import numpy as np
import torch

from .activations import RELU, Activation
from .data import check_memory
from .devices import free_memory_bytes

MASK_CACHE_BYTES = 2 * 2**30  # at most this much (and a quarter of the free memory) for M in the compute dtype


class PatternOperator:
    """A(U) = Σ_i W_i X u_i and the cone map G on torch tensors, chunked over samples.

    Args:
        X: (n, d) design matrix (bias column already appended if any).
        masks: (n, P) boolean pattern masks.
        dtype, device: where the products are computed.
        chunk_rows: samples per chunk; chosen so a chunk's n_c x P float block is about 64 MiB.
        activation: σ(t) = a(t)_+ + b(t)_-, giving the fit weights W_i = aD_i + b(I − D_i) (ReLU: W_i = D_i).
    """

    def __init__(self, X: np.ndarray | torch.Tensor, masks: np.ndarray | torch.Tensor,
                 dtype: torch.dtype = torch.float64, device: str | torch.device = "cpu",
                 chunk_rows: int | None = None, activation: Activation = RELU) -> None:
        n, d = X.shape
        P = masks.shape[1]
        itemsize = torch.finfo(dtype).bits // 8
        check_memory(n * d * itemsize + n * P * 1.0, f"the pattern operator for {n} samples x {P} patterns",
                     "use fewer patterns or fewer samples.", device=device)
        self.X = torch.as_tensor(X, dtype=dtype, device=device)
        self.masks = torch.as_tensor(masks, dtype=torch.bool, device=device)
        self.dtype, self.device = dtype, torch.device(device)
        self.n, self.d, self.P = n, d, P
        self.activation = activation
        self.chunk_rows = chunk_rows or max(1, min(n, (64 * 2**20) // max(1, P * itemsize)))
        cache = n * P * itemsize <= min(MASK_CACHE_BYTES, 0.25 * free_memory_bytes(device))
        self._mask_values = self.masks.to(dtype) if cache else None
        signs = 2 * n * P * itemsize <= min(MASK_CACHE_BYTES, 0.25 * free_memory_bytes(device))
        self._sign_values = 2.0 * self._mask_values - 1.0 if cache and signs else None

    def _chunks(self):
        for start in range(0, self.n, self.chunk_rows):
            stop = min(self.n, start + self.chunk_rows)
            yield slice(start, stop)

    def _mask_chunk(self, sl: slice) -> torch.Tensor:
        """Rows ``sl`` of M (column i = diagonal of D_i) in the compute dtype."""
        return self._mask_values[sl] if self._mask_values is not None else self.masks[sl].to(self.dtype)

    def _sign_chunk(self, sl: slice) -> torch.Tensor:
        """Rows ``sl`` of S = 2M − 1 (column i = diagonal of S_i) in the compute dtype."""
        return self._sign_values[sl] if self._sign_values is not None else 2.0 * self._mask_chunk(sl) - 1.0

    def matvec(self, U: torch.Tensor) -> torch.Tensor:
        """Σ_i W_i X u_i = (a − b) rowsum((M U) ∘ X) + b X Σ_i u_i for U of shape (P, d), an (n,) result.

        Blocks U of shape (P, d, c) give Σ_i W_i X U_i of shape (n, c): M multiplies U as a (P, d·c)
        matrix, and row k of the product, viewed as d x c, is contracted with x_k over d.
        """
        a, b = self.activation.a, self.activation.b
        vector = U.ndim == 3
        flat = U.flatten(1) if vector else U
        out = torch.empty((self.n, *U.shape[2:]), dtype=self.dtype, device=self.device)
        for sl in self._chunks():
            MU, Xs = self._mask_chunk(sl) @ flat, self.X[sl]
            if vector:
                out[sl] = (MU.view(-1, self.d, U.shape[2]) * Xs[:, :, None]).sum(dim=1)
            else:
                out[sl] = (MU * Xs).sum(dim=1)
        if a - b != 1:
            out *= a - b
        if b != 0:
            out += b * (self.X @ U.sum(dim=0))
        return out

    def rmatvec(self, r: torch.Tensor, M: torch.Tensor | None = None) -> torch.Tensor:
        """[Xᵀ W_i r]_i = (a − b) Mᵀ(r ∘ X) + b 1(Xᵀr)ᵀ as a (P, d) tensor; with cone multipliers
        M (n, P) given, also + Gᵀ(M) = (S ⊙ M)ᵀX.

        r of shape (n, c) gives [Xᵀ W_i r]_i of shape (P, d, c): r ∘ X is then the (n, d·c) matrix
        whose row k is the outer product x_k r_kᵀ (cone multipliers need an (n,) r).
        """
        a, b = self.activation.a, self.activation.b
        vector = r.ndim == 2
        width = self.d * r.shape[1] if vector else self.d
        # accumulated transposed, (d·c, P) = (r ∘ X)ᵀ M: M is read in its stored row-major layout,
        # 1.2–1.9x faster than multiplying by the transposed view Mᵀ (benchmarks/bench_operator.py)
        out = torch.zeros(width, self.P, dtype=self.dtype, device=self.device)
        for sl in self._chunks():
            Xs = self.X[sl]
            rX = (Xs[:, :, None] * r[sl, None, :]).view(-1, width) if vector else r[sl, None] * Xs
            out.addmm_(rX.T, self._mask_chunk(sl), alpha=a - b)
            if M is not None:
                out.addmm_(Xs.T, M[sl] * self._sign_chunk(sl))
        if b != 0:
            out += b * (self.X.T @ r).reshape(width, 1)
        out = out.T.contiguous()
        return out.view(self.P, self.d, r.shape[1]) if vector else out

    def cone_products(self, U: torch.Tensor) -> torch.Tensor:
        """G(U) = S ⊙ (X Uᵀ): (2D_i − I) X u_i for every i, as an (n, P) tensor (≥ 0 iff each u_i is in its cone).

        Blocks U of shape (P, d, c) give the (n, P, c) tensor of (2D_i − I) X U_i[:, k], one cone per column.
        """
        if U.ndim == 2:
            return self.matvec_and_cone(U)[1]
        P, d, c = U.shape
        flat = U.permute(1, 0, 2).reshape(d, P * c)  # column (i, k) is U_i[:, k]
        out = torch.empty(self.n, P, c, dtype=self.dtype, device=self.device)
        for sl in self._chunks():
            Z = (self.X[sl] @ flat).view(sl.stop - sl.start, P, c)
            out[sl] = Z * self._sign_chunk(sl)[:, :, None]
        return out

    def matvec_and_cone(self, U: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(A(U), G(U)) from one product X Uᵀ per chunk."""
        a, b = self.activation.a, self.activation.b
        fit = torch.empty(self.n, dtype=self.dtype, device=self.device)
        cone = torch.empty(self.n, self.P, dtype=self.dtype, device=self.device)
        for sl in self._chunks():
            Z = self.X[sl] @ U.T
            fit[sl] = (a - b) * (Z * self.masks[sl]).sum(dim=1) + b * Z.sum(dim=1)
            cone[sl] = Z * self._sign_chunk(sl)
        return fit, cone

    def cone_adjoint(self, M: torch.Tensor) -> torch.Tensor:
        """Gᵀ(M) = (S ⊙ M)ᵀ X = [Xᵀ S_i m_i]_i as a (P, d) tensor, for M of shape (n, P).

        M of shape (n, P, c) (one multiplier column per output) gives the (P, d, c) blocks [Xᵀ S_i M[:, i, k]]_{i,k}.
        """
        c = M.shape[2] if M.ndim == 3 else 1
        out = torch.zeros(self.P * c, self.d, dtype=self.dtype, device=self.device)
        for sl in self._chunks():
            signs = self._sign_chunk(sl)
            out += (M[sl] * (signs[:, :, None] if M.ndim == 3 else signs)).reshape(sl.stop - sl.start, self.P * c
                                                                                   ).T @ self.X[sl]
        return out.view(self.P, c, self.d).transpose(1, 2).contiguous() if M.ndim == 3 else out

    def lipschitz(self, iters: int = 30, seed: int = 0) -> float:
        """‖A‖₂² by power iteration on AᵀA (an estimate from below; callers back off by line search)."""
        g = torch.Generator(device="cpu").manual_seed(seed)
        U = torch.randn(self.P, self.d, generator=g, dtype=self.dtype, device="cpu").to(self.device)
        U /= U.norm()
        val = 0.0
        for _ in range(iters):
            V = self.rmatvec(self.matvec(U))
            val = float(V.norm())
            if val == 0.0:
                return 0.0
            U = V / val
        return val
