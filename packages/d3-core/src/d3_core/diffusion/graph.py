"""Transition graphs of the forward process: uniform (D3) and absorbing (SEDD),
docs/method.md#transition-graphs.

A graph is a continuous-time Markov chain on `num_states` token states with rate matrix Q
(rows sum to zero). Conventions, shared by every method:

- tokens `x` are int64 of any shape (...), values in [0, num_states);
- `sigma` is the total noise, broadcastable to `x`'s shape (e.g. (B, 1) for tokens (B, L));
- scores are ratio estimates s_y(x) = p(y) / p(x) with a trailing state axis (..., num_states);
  log-scores are their logarithms. The entry at the current token carries no information.
"""

from __future__ import annotations

import abc

import torch
import torch.nn.functional as F

from d3_core.errors import D3ConfigError

__all__ = ["AbsorbingGraph", "Graph", "UniformGraph", "build_graph"]


def _entropy_kernel(a: torch.Tensor) -> torch.Tensor:
    """K(a) = a (log a - 1), with K(0) = 0."""
    return torch.where(a > 0, a * (torch.log(a.clamp_min(torch.finfo(a.dtype).tiny)) - 1), 0.0)


class Graph(abc.ABC):
    """A transition graph over `num_states` states; see the module docstring for conventions."""

    #: Number of token states including any mask state.
    num_states: int
    #: Whether the last state is an absorbing mask that the final denoiser must never emit.
    absorbing: bool

    @abc.abstractmethod
    def rate_matrix(self, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """The full rate matrix Q, (num_states, num_states), rows summing to zero."""

    @abc.abstractmethod
    def transition(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """Rows P_sigma(x -> .) of exp(sigma Q): (..., num_states), rows summing to one."""

    @abc.abstractmethod
    def transp_transition(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """Columns P_sigma(. -> x) of exp(sigma Q), as (..., num_states)."""

    @abc.abstractmethod
    def sample_transition(
        self, x: torch.Tensor, sigma: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Draws x_sigma ~ P_sigma(x -> .) independently per token; int64 of x's shape."""

    @abc.abstractmethod
    def staggered_score(self, score: torch.Tensor, dsigma: torch.Tensor) -> torch.Tensor:
        """exp(-dsigma Q)^T s per token: the score moved back by `dsigma`
        (docs/method.md#transition-graphs)."""

    @abc.abstractmethod
    def sample_limit(
        self, *shape: int, device=None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Draws tokens of `shape` from the limit distribution (sigma -> infinity)."""

    @abc.abstractmethod
    def score_entropy(
        self, log_score: torch.Tensor, sigma: torch.Tensor, x: torch.Tensor, x0: torch.Tensor
    ) -> torch.Tensor:
        """Denoising score entropy per token (docs/method.md#score-entropy-loss), >= 0, zero at the
        true ratios.

        Args:
            log_score: (..., num_states) model log-scores at the noised tokens `x`.
            sigma: Total noise, broadcastable to `x`.
            x: Noised tokens (...).
            x0: Clean tokens (...).

        Returns:
            (...) entropy in the dtype of `log_score`; the entry at `x` gets no gradient.
        """

    def transp_rate(self, x: torch.Tensor) -> torch.Tensor:
        """Rates into `x`, Q(y, x) for every y: (..., num_states) float32."""
        q = self.rate_matrix(torch.float32).to(x.device)
        return q.t()[x]

    def reverse_rate(self, x: torch.Tensor, score: torch.Tensor) -> torch.Tensor:
        """Reverse rates R(x -> y) = s_y Q(y, x) for y != x; the diagonal makes rows sum to zero.

        Args:
            x: Current tokens (...).
            score: (..., num_states) scores (not log-scores), non-negative.

        Returns:
            (..., num_states) reverse rate rows.
        """
        rate = self.transp_rate(x) * score
        rate = rate.scatter(-1, x[..., None], 0.0)
        return rate.scatter(-1, x[..., None], -rate.sum(-1, keepdim=True))


class UniformGraph(Graph):
    """Uniform graph Q = (1/V) 11^T - I: a jump lands on any of the V states (D3's graph)."""

    absorbing = False

    def __init__(self, num_states: int = 4) -> None:
        if num_states < 2:
            raise D3ConfigError(f"a uniform graph needs at least 2 states, got {num_states}")
        self.num_states = num_states

    def __repr__(self) -> str:
        return f"UniformGraph(num_states={self.num_states})"

    def rate_matrix(self, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        v = self.num_states
        return torch.full((v, v), 1.0 / v, dtype=dtype) - torch.eye(v, dtype=dtype)

    def transition(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        v = self.num_states
        sigma = torch.as_tensor(sigma, device=x.device)
        sigma = sigma.expand(x.shape)[..., None]
        move = -torch.expm1(-sigma)  # 1 - e^-sigma, the chance of a fresh uniform draw
        probs = (move / v).expand(*x.shape, v).clone()
        return probs.scatter(-1, x[..., None], 1.0 - move * (v - 1) / v)

    def transp_transition(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        return self.transition(x, sigma)  # exp(sigma Q) is symmetric

    def sample_transition(
        self, x: torch.Tensor, sigma: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        move_chance = -torch.expm1(-torch.as_tensor(sigma, device=x.device))
        moved = torch.rand(x.shape, device=x.device, generator=generator) < move_chance
        fresh = torch.randint(0, self.num_states, x.shape, device=x.device, generator=generator)
        return torch.where(moved, fresh, x)

    def staggered_score(self, score: torch.Tensor, dsigma: torch.Tensor) -> torch.Tensor:
        dsigma = torch.as_tensor(dsigma, dtype=score.dtype, device=score.device)
        dsigma = dsigma.reshape(*dsigma.shape, *[1] * (score.dim() - dsigma.dim()))
        # e^d s - (e^d - 1)/V * sum(s); expm1 keeps small steps accurate.
        return score * torch.exp(dsigma) - torch.expm1(dsigma) / self.num_states * score.sum(
            -1, keepdim=True
        )

    def sample_limit(
        self, *shape: int, device=None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        return torch.randint(0, self.num_states, shape, device=device, generator=generator)

    def score_entropy(
        self, log_score: torch.Tensor, sigma: torch.Tensor, x: torch.Tensor, x0: torch.Tensor
    ) -> torch.Tensor:
        v = self.num_states
        sigma = torch.as_tensor(sigma, dtype=log_score.dtype, device=log_score.device)
        esigm1 = torch.expm1(sigma).expand(x.shape)
        rho = esigm1 / (esigm1 + v)  # the ratio r_y for every y != x when nothing moved
        others = F.one_hot(x, v) == 0  # (..., V): the y != x terms of the sum
        pos = torch.where(others, log_score.exp(), 0.0).sum(-1)
        s_sum = torch.where(others, log_score, 0.0).sum(-1)
        s_x0 = log_score.gather(-1, x0[..., None]).squeeze(-1)
        stayed = x == x0
        # x = x0: r_y = rho for all y != x.  x != x0: r_x0 = 1/rho, r_y = 1 otherwise (K(1) = -1).
        neg = torch.where(stayed, rho * s_sum, s_sum + s_x0 / rho - s_x0)
        const = torch.where(
            stayed, (v - 1) * _entropy_kernel(rho), _entropy_kernel(1.0 / rho) - (v - 2)
        )
        return (pos - neg + const) / v


class AbsorbingGraph(Graph):
    """Absorbing graph of SEDD: V data states plus a mask state V that never leaves."""

    absorbing = True

    def __init__(self, num_data_states: int = 4) -> None:
        if num_data_states < 1:
            raise D3ConfigError(f"an absorbing graph needs >= 1 data state, got {num_data_states}")
        self.num_states = num_data_states + 1
        self.mask = num_data_states

    def __repr__(self) -> str:
        return f"AbsorbingGraph(num_data_states={self.mask})"

    def rate_matrix(self, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        q = -torch.eye(self.num_states, dtype=dtype)
        q[:, self.mask] += 1.0
        return q

    def transition(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        sigma = torch.as_tensor(sigma, device=x.device).expand(x.shape)[..., None]
        is_mask = (x == self.mask)[..., None]
        stay = torch.where(is_mask, 1.0, torch.exp(-sigma))
        masked = torch.where(is_mask, 0.0, -torch.expm1(-sigma))  # 1 - e^-sigma, accurately
        mask_column = torch.arange(self.num_states, device=x.device) == self.mask
        return F.one_hot(x, self.num_states) * stay + mask_column * masked

    def transp_transition(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        # P(y -> x): e^-sigma for y = x != mask; at x = mask, 1 - e^-sigma from every data y
        # and 1 from the mask itself.
        sigma = torch.as_tensor(sigma, device=x.device).expand(x.shape)[..., None]
        is_mask = (x == self.mask)[..., None]
        stay = torch.where(is_mask, 1.0, torch.exp(-sigma))
        data_rows = torch.arange(self.num_states, device=x.device) != self.mask
        return F.one_hot(x, self.num_states) * stay + (is_mask & data_rows) * -torch.expm1(-sigma)

    def sample_transition(
        self, x: torch.Tensor, sigma: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        move_chance = -torch.expm1(-torch.as_tensor(sigma, device=x.device))
        moved = torch.rand(x.shape, device=x.device, generator=generator) < move_chance
        return torch.where(moved, self.mask, x)

    def staggered_score(self, score: torch.Tensor, dsigma: torch.Tensor) -> torch.Tensor:
        dsigma = torch.as_tensor(dsigma, dtype=score.dtype, device=score.device)
        dsigma = dsigma.reshape(*dsigma.shape, *[1] * (score.dim() - dsigma.dim()))
        # Data entries grow by e^d; the mask entry takes the mass they gave up.
        data_sum = score[..., : self.mask].sum(-1, keepdim=True)
        out = score * torch.exp(dsigma)
        out[..., self.mask : self.mask + 1] = (
            score[..., self.mask :] - torch.expm1(dsigma) * data_sum
        )
        return out

    def sample_limit(
        self, *shape: int, device=None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        return torch.full(shape, self.mask, dtype=torch.int64, device=device)

    def score_entropy(
        self, log_score: torch.Tensor, sigma: torch.Tensor, x: torch.Tensor, x0: torch.Tensor
    ) -> torch.Tensor:
        sigma = torch.as_tensor(sigma, dtype=log_score.dtype, device=log_score.device)
        masked = x == self.mask
        ratio = 1.0 / torch.expm1(sigma).expand(x.shape)  # r_x0 at a masked token; other r_y = 0
        pos = log_score[..., : self.mask].exp().sum(-1)
        neg = ratio * log_score.gather(-1, x0[..., None]).squeeze(-1)
        return torch.where(masked, pos - neg + _entropy_kernel(ratio), 0.0)


_GRAPHS = {"uniform": UniformGraph, "absorbing": AbsorbingGraph}


def build_graph(kind: str = "uniform", num_data_states: int = 4) -> Graph:
    """Builds a graph by name: "uniform" (D3) or "absorbing" (SEDD, adds a mask state)."""
    if kind.lower() not in _GRAPHS:
        raise D3ConfigError(f"unknown graph {kind!r}; choose one of {sorted(_GRAPHS)}")
    return _GRAPHS[kind.lower()](num_data_states)
