"""Quickstart: one logistic regression, three ways — the tensor engine, a probabilistic model fitted by SVI, and
posterior predictions.

1. Gradient descent on the negative log-likelihood with probdl tensors and autograd; standard errors from the
   Hessian at the optimum (a Laplace approximation).
2. The same model as a plain Python function with ``sample`` statements, broad Normal(0, 10²) priors on the
   weights, fitted by stochastic variational inference (SVI) with an ``AutoNormal`` guide (an independent
   Normal per weight) and the ``Trace_ELBO`` loss. With 500 data points the priors hardly matter, so the
   posterior means and standard deviations should be close to step 1's estimates and standard errors.
3. ``Predictive``: draws of the labels from the posterior predictive, used for a posterior predictive check
   (the fraction of ones in replicated data sets against the observed fraction) and for the predicted
   probability of a new point with its credible interval.
4. MCMC: NUTS with two chains on the eight-schools model of ``examples/eight_schools.py``, and its summary
   (posterior mean, sd, interval, effective sample sizes and R-hat from ArviZ).

The data are generated here (two Gaussian classes in 5 dimensions), so the script needs nothing beyond
probdl. Run it with `make demo`.
"""
import time

import numpy as np

import probdl as pd
from probdl import distributions as dist
from probdl.infer import MCMC, NUTS
from probdl.infer.autoguide import AutoNormal
from probdl.infer.elbo import Trace_ELBO
from probdl.infer.predictive import Predictive
from probdl.infer.svi import SVI
from probdl.optim import ClippedAdam


def make_data(n: int = 500, d: int = 5, seed: int = 0):
    """Labels from a known logistic model, so we can see whether the fit recovers it."""
    rng = np.random.default_rng(seed)
    true_w = rng.normal(size=d)
    true_b = -0.5
    X = rng.normal(size=(n, d))
    p = 1 / (1 + np.exp(-(X @ true_w + true_b)))
    y = (rng.uniform(size=n) < p).astype(np.float64)
    return X, y, true_w, true_b


# ---------------------------------------------------------------------------- 1. the tensor engine
def negative_log_likelihood(w, b, X, y):
    """Mean Bernoulli negative log-likelihood of labels y under logits X w + b, computed stably."""
    logits = X @ w + b
    return -(y * pd.log_sigmoid(logits) + (1 - y) * pd.log_sigmoid(-logits)).mean()


def fit_by_gradient_descent(X, y):
    w = pd.zeros(X.shape[1], requires_grad=True)
    b = pd.zeros((), requires_grad=True)
    lr = 0.5
    for step in range(301):
        loss = negative_log_likelihood(w, b, X, y)
        loss.backward()
        with pd.no_grad():  # plain gradient descent on the raw arrays
            w.data -= lr * w.grad.data
            b.data -= lr * b.grad.data
        w.grad = b.grad = None
        if step % 100 == 0:
            print(f"step {step:4d}   loss {loss.item():.4f}")
    # The Hessian of the loss at the optimum gives standard errors (Laplace approximation).
    params = pd.concatenate([w.detach(), b.detach().reshape(1)])
    H = pd.hessian(lambda p: negative_log_likelihood(p[:-1], p[-1], X, y) * len(y))(params)
    return params.numpy(), np.sqrt(np.diag(np.linalg.inv(H.numpy())))


# ---------------------------------------------------------------------------- 2. the model as a function
def model(X, y=None):
    """w ~ Normal(0, 10² I), b ~ Normal(0, 10²), y_i ~ Bernoulli(sigmoid(x_i·w + b)) independently."""
    w = pd.sample("w", dist.Normal(pd.zeros(X.shape[1]), 10.0).to_event(1))
    b = pd.sample("b", dist.Normal(0.0, 10.0))
    with pd.plate("data", X.shape[0]):
        return pd.sample("y", dist.Bernoulli(logits=X @ w + b), obs=y)


def main() -> None:
    start = time.perf_counter()
    X, y, true_w, true_b = make_data()

    print("1. maximum likelihood by gradient descent")
    mle, se = fit_by_gradient_descent(X, y)
    accuracy = ((X @ mle[:-1] + mle[-1] > 0) == (y > 0.5)).mean()
    print(f"training accuracy {accuracy:.3f}")

    print("\n2. the same model with sample statements, fitted by SVI with an AutoNormal guide")
    pd.clear_param_store()
    guide = AutoNormal(model)
    steps = 2000
    optim = ClippedAdam(lr=0.05, lrd=0.02 ** (1 / steps))  # the step size decays 50-fold: less noise at the end
    svi = SVI(model, guide, optim, Trace_ELBO(), rng_seed=0)
    result = svi.run(steps, pd.tensor(X), pd.tensor(y), progress_bar=False)
    print(f"loss (negative ELBO) {result.losses[:50].mean():.1f} (first 50 steps) -> "
          f"{result.losses[-50:].mean():.1f} (last 50)")
    median = guide.median(X, y)
    q = guide.quantiles([0.158655, 0.841345], X, y)  # the 16% and 84% quantiles: mean -/+ one sd for a Normal
    post_mean = np.append(median["w"].numpy(), median["b"].item())
    post_sd = np.append(q["w"].numpy()[1] - q["w"].numpy()[0], q["b"].numpy()[1] - q["b"].numpy()[0]) / 2
    print(f"{'':>6} {'true':>8} {'MLE':>8} {'std err':>8} {'post. mean':>11} {'post. sd':>9}")
    for i, row in enumerate(zip(np.append(true_w, true_b), mle, se, post_mean, post_sd)):
        name = f"w[{i}]" if i < len(true_w) else "b"
        print(f"{name:>6} {row[0]:8.3f} {row[1]:8.3f} {row[2]:8.3f} {row[3]:11.3f} {row[4]:9.3f}")

    print("\n3. posterior predictive draws with Predictive")
    predictive = Predictive(model, guide=guide, num_samples=500, return_sites=["y"])
    y_rep = predictive(1, pd.tensor(X))["y"].numpy()  # (500, n): 500 replicated data sets
    frac = y_rep.mean(1)
    print(f"fraction of ones: observed {y.mean():.3f}; replicated {frac.mean():.3f} "
          f"(90% interval {np.quantile(frac, 0.05):.3f} - {np.quantile(frac, 0.95):.3f}); posterior predictive "
          f"p-value {np.mean(frac >= y.mean()):.2f}")
    x_new = np.zeros((1, X.shape[1]))
    p_new = Predictive(model, guide=guide, num_samples=500, return_sites=["w", "b"])(2, pd.tensor(x_new))
    prob = 1 / (1 + np.exp(-(x_new @ p_new["w"].numpy().T + p_new["b"].numpy())))[0]
    print(f"P(y = 1 | x = 0): posterior mean {prob.mean():.3f}, 90% credible interval "
          f"{np.quantile(prob, 0.05):.3f} - {np.quantile(prob, 0.95):.3f} (true {1 / (1 + np.exp(-true_b)):.3f})")

    print("\n4. MCMC: NUTS on eight schools (non-centred), 2 chains in parallel processes (examples/eight_schools.py)")
    from eight_schools import SIGMA, Y, noncentered

    mcmc = MCMC(NUTS(noncentered), num_warmup=300, num_samples=300, num_chains=2, chain_method="parallel",
                progress_bar=False)
    mcmc.run(Y, SIGMA, seed=0)
    mcmc.print_summary()
    print(f"\ndone in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
