#!/usr/bin/env python3
"""The notebook's PyTorch model, as the reference side of the project.

`Encoder` and `DeepMDA` are the notebook's (seed/fashion_mda_notebook.txt), with the six convolution
widths made a parameter so that the quick experiment's narrow encoder has the same state_dict names.
`MDAHead`, `EM_DNLLLoss` and `DNLLLoss` stand in for the `dnll` library the notebook imports, written
from dnll.md sections 3 and 4: same parameter names and shapes, same forward math (no Gaussian
constant, no clamping), responsibilities detached in the EM loss.

Run it to check the head and both losses against the float64 test vector of dnll.md section 4:
    python3 tools/pytorch/notebook_model.py
"""

import math
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

NOTEBOOK_WIDTHS = (64, 64, 128, 128, 256, 256)
NARROW_WIDTHS = (16, 16, 32, 32, 64, 64)


def parse_widths(text):
    """'64,64,128,128,256,256' -> a tuple of six positive ints (one clear error otherwise)."""
    try:
        widths = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise SystemExit(f"--widths {text!r}: expected six comma-separated positive integers")
    if len(widths) != 6 or any(w < 1 for w in widths):
        raise SystemExit(f"--widths {text!r}: expected six comma-separated positive integers")
    return widths


class Encoder(nn.Module):
    def __init__(self, dim, widths=NOTEBOOK_WIDTHS):
        super().__init__()
        w = widths
        self.features = nn.Sequential(
            nn.Conv2d(1, w[0], 3, padding=1), nn.BatchNorm2d(w[0]), nn.ReLU(inplace=True),
            nn.Conv2d(w[0], w[1], 3, padding=1), nn.BatchNorm2d(w[1]), nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(w[1], w[2], 3, padding=1), nn.BatchNorm2d(w[2]), nn.ReLU(inplace=True),
            nn.Conv2d(w[2], w[3], 3, padding=1), nn.BatchNorm2d(w[3]), nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(w[3], w[4], 3, padding=1), nn.BatchNorm2d(w[4]), nn.ReLU(inplace=True),
            nn.Conv2d(w[4], w[5], 3, padding=1), nn.BatchNorm2d(w[5]), nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(1),
        )
        self.proj = nn.Linear(w[5], dim)

    def forward(self, x):
        x = self.features(x)
        x = torch.flatten(x, 1)
        return self.proj(x)


class MDAHead(nn.Module):
    """Per class c a mixture of K isotropic Gaussians: means mu[c,k], variances exp(log_cov[c,k])."""

    def __init__(self, C, D, K, mu_init="independent"):
        super().__init__()
        self.C, self.D, self.K = C, D, K
        std = 6.0 / math.sqrt(2 * D)
        if mu_init == "independent":
            mu = torch.randn(C, K, D) * std
        elif mu_init == "class_centred":
            # The later library version: one centre per class, components scattered tightly around it.
            mu = torch.randn(C, 1, D) * std + torch.randn(C, K, D) * (0.1 * std)
        else:
            raise ValueError(f"mu_init {mu_init!r}: expected 'independent' or 'class_centred'")
        self.mu = nn.Parameter(mu)
        self.prior_logits = nn.Parameter(torch.zeros(C))
        self.mixture_logits = nn.Parameter(torch.zeros(C, K))
        self.log_cov = nn.Parameter(torch.zeros(C, K))

    def component_terms(self, z):
        """a[n,c,k] = log w[c,k] - 0.5 (|z_n - mu[c,k]|^2 / exp(s[c,k]) + D s[c,k]);  z (N,D) -> (N,C,K)."""
        diff = z[:, None, None, :] - self.mu[None]
        m2 = (diff * diff).sum(-1)
        log_w = F.log_softmax(self.mixture_logits, dim=-1)
        return log_w[None] - 0.5 * (m2 / torch.exp(self.log_cov)[None] + self.D * self.log_cov[None])

    def forward(self, z):
        """The logits delta (N,C): log prior + log of the class's mixture density (no Gaussian constant)."""
        return F.log_softmax(self.prior_logits, dim=0)[None] + torch.logsumexp(self.component_terms(z), dim=-1)


class DNLLLoss(nn.Module):
    """mean_n [ -delta[y] + lambda * sum_c exp(delta[c]) ] (no log-sum-exp trick on the penalty)."""

    def __init__(self, lambda_reg=0.1):
        super().__init__()
        self.lambda_reg = lambda_reg

    def forward(self, head, z, y):
        delta = head(z)
        picked = delta.gather(1, y[:, None])[:, 0]
        return (-picked + self.lambda_reg * torch.exp(delta).sum(-1)).mean()


class EM_DNLLLoss(nn.Module):
    """The EM surrogate: -[log pi_y + sum_k r_k a[y,k]] + lambda sum_c exp(delta[c]), r = softmax_k a[y,:]
    held constant. Called as the notebook does: loss_fn(model.head, z, y)."""

    def __init__(self, lambda_reg=0.1):
        super().__init__()
        self.lambda_reg = lambda_reg

    def forward(self, head, z, y):
        a = head.component_terms(z)
        log_prior = F.log_softmax(head.prior_logits, dim=0)
        delta = log_prior[None] + torch.logsumexp(a, dim=-1)
        a_true = a[torch.arange(z.shape[0], device=z.device), y]
        r = torch.softmax(a_true, dim=-1).detach()
        q = log_prior[y] + (r * a_true).sum(-1)
        return (-q + self.lambda_reg * torch.exp(delta).sum(-1)).mean()


class DeepMDA(nn.Module):
    def __init__(self, C, D, K, widths=NOTEBOOK_WIDTHS):
        super().__init__()
        self.encoder = Encoder(D, widths)
        self.head = MDAHead(C, D, K)

    def forward(self, x):
        z = self.encoder(x)
        return self.head(z)


def check_test_vector():
    """dnll.md section 4: C=3, K=2, D=2, lambda=0.1, float64. Raises AssertionError on a mismatch."""
    f64 = torch.float64
    head = MDAHead(3, 2, 2).double()
    with torch.no_grad():
        head.mu.copy_(torch.tensor([[[1, .5], [1.5, -.5]], [[-1, 1], [-2, 0]], [[0, -1.5], [.5, -2.5]]], dtype=f64))
        head.log_cov.copy_(torch.tensor([[0, -.5], [.3, 0], [-.2, .4]], dtype=f64))
        head.mixture_logits.copy_(torch.tensor([[0, .5], [-.3, .2], [.1, -.1]], dtype=f64))
        head.prior_logits.copy_(torch.tensor([0, .2, -.1], dtype=f64))
    z0 = torch.tensor([[.9, .2], [-1.2, .7], [.3, -2], [0, 0]], dtype=f64)
    y = torch.tensor([0, 1, 2, 1])

    def close(got, want, what, tol=1e-8):
        want = torch.tensor(want, dtype=f64)
        err = (got.detach() - want).abs().max().item()
        assert err <= tol, f"{what}: max abs error {err:.3g} > {tol:g}\n got {got.detach().tolist()}"

    close(head(z0), [[-1.2809402979, -3.6422147564, -3.5942111932],
                     [-4.5308153036, -1.4173487930, -5.2458265397],
                     [-3.9207442222, -5.4214547108, -1.4389454448],
                     [-2.2401460772, -2.4650423290, -2.8288954441]], "delta", 1e-9)
    close(DNLLLoss(0.1)(head, z0, y), 1.6781142341592457, "DNLL", 1e-12)

    z = z0.clone().requires_grad_(True)
    loss = EM_DNLLLoss(0.1)(head, z, y)
    close(loss, 2.344585864309776, "EM-DNLL", 1e-12)
    loss.backward()
    close(z.grad, [[-.15271624, .13328898], [.09656002, .07368767], [.04928053, -.07045645], [.30876000, -.11525306]],
          "dz")
    close(head.mu.grad, [[[.00778403, .02914002], [.13761720, -.16460037]],
                         [[-.09615548, .13537616], [-.30285154, -.09748605]],
                         [[-.05914650, .10283891], [.01086797, -.02653579]]], "dmu")
    close(head.prior_logits.grad, [.07143258, -.11111844, .03968586], "dprior_logits")
    close(head.mixture_logits.grad, [[-.00806365, .00806365], [-.07070992, .07070992], [-.02774091, .02774091]],
          "dmixture_logits")
    close(head.log_cov.grad, [[.09550973, .04460787], [.13961914, -.03495340], [.13017028, .07427665]], "dlog_cov")

    # The identity of dnll.md section 4: the EM loss has the DNLL loss's gradients.
    head.zero_grad()
    z2 = z0.clone().requires_grad_(True)
    DNLLLoss(0.1)(head, z2, y).backward()
    close(z2.grad, z.grad.tolist(), "dz of DNLL vs EM-DNLL", 1e-12)


if __name__ == "__main__":
    check_test_vector()
    print("test vector ok")
    sys.exit(0)
