"""Lesson 01 — automatic differentiation from scratch.

Rebuilds, in the order a course would: the derivative by finite differences; the chain rule by
hand on a small expression, with the value and gradient of every node; a 30-line `Scalar` engine
that does the same automatically; tinyseg's array engine (`Tensor`, `Op`, `Tensor.backward`,
the broadcasting rule) and its graph, drawn; numerical gradient checking, which catches a
deliberately wrong backward; and finally a small neural network (a two-layer perceptron) trained
on a generated 2-D problem, first with plain gradient descent, then with Adam written by hand
and checked against `tinyseg.optim.Adam`. The training loop written here is the one that
`tinyseg.fit` runs, plus checkpoints and validation. Its loss is Eq. 1 of [ZX18] for one pixel.

Prints: numbered findings with their expected values.
Saves: ``01_finite_differences.png`` (error of a numerical derivative against the step),
``01_chain_rule_graph.png`` and ``01_fcn_graph.png`` (recorded graphs, drawn by
`tinyseg.viz.draw_graph`), ``01_mlp.png`` (training loss and the learned decision regions).
Time: a few seconds on a 2-core CPU (``--fast``: about the same, with fewer steps).

Run: ``python lessons/01_autodiff.py [--fast] [--device cpu|gpu] [--out DIR]``.
The file is also a notebook (Jupytext's percent format: each ``# %%`` starts a cell, one per
step of the lesson's page; the flags are set in the ``parameters`` cell): see the README.
"""
from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np

import tinyseg as ts
from tinyseg import F
from tinyseg.utils import finding, lesson_args, savefig, show_figure
from tinyseg.viz import draw_graph


# %% tags=["parameters"]
# The lesson's flags: as a script, the command line sets them (--fast, --device, --out); in a
# notebook, set them here.
fast = False    # True: the same code paths and figures on a tiny budget, in seconds
device = "cpu"  # "cpu", "gpu" or "auto"
out = None      # folder for figures and runs; None: runs/lessons/01_autodiff/

# %%
# Importing this file stops here (lesson_args refuses): an import never runs the steps.
args = lesson_args("01_autodiff", __doc__, fast=fast, device=device, out=out)
xp = np if args.device == "cpu" else ts.get_array_module(ts.to_device(np.zeros(1), "gpu"))
a0, b0 = 0.5, -1.5  # the running example: f(a, b) = tanh(a·b + a) at this point


# %% [markdown]
# ## 1. The derivative, numerically
#
# Forward and central differences, and their error against the step h.

# %%
# --8<-- [start:finite_differences]
def f_of_a(a: float, b: float = -1.5) -> float:
    """The running example: f(a, b) = tanh(a·b + a)."""
    return math.tanh(a * b + a)


def forward_difference(f, a: float, h: float) -> float:
    return (f(a + h) - f(a)) / h                  # error O(h)


def central_difference(f, a: float, h: float) -> float:
    return (f(a + h) - f(a - h)) / (2 * h)        # error O(h²): the h² terms cancel
# --8<-- [end:finite_differences]


# %%
# The exact derivative to compare with comes from the chain rule by hand (section 2).
# --8<-- [start:chain_rule]
def chain_rule_by_hand(a: float, b: float) -> dict[str, tuple[float, float]]:
    """Values and gradients d f / d node of every node of f = tanh(a·b + a), by hand."""
    u = a * b                # node 1
    v = u + a                # node 2
    f = math.tanh(v)         # node 3, the output
    df = 1.0                 # d f / d f
    dv = df * (1 - f * f)    # tanh'(v) = 1 − tanh(v)²
    du = dv * 1.0            # v = u + a: d v / d u = 1
    da = dv * 1.0 + du * b   # a is used twice: by v (dv/da = 1) and by u (du/da = b)
    db = du * a              # d u / d b = a
    return {"a": (a, da), "b": (b, db), "u = a·b": (u, du), "v = u + a": (v, dv),
            "f = tanh v": (f, df)}
# --8<-- [end:chain_rule]


# %%
hand = chain_rule_by_hand(a0, b0)
exact = hand["a"][1]
steps = np.logspace(-13, -1, 25)
err_fwd = [abs(forward_difference(f_of_a, a0, h) - exact) for h in steps]
err_ctr = [abs(central_difference(f_of_a, a0, h) - exact) for h in steps]
best = int(np.argmin(err_ctr))
finding(1, f"d f / d a of f = tanh(a·b + a) at a = {a0}, b = {b0}: central difference with h = 1e-5 is off by "
           f"{abs(central_difference(f_of_a, a0, 1e-5) - exact):.1e}, forward difference by "
           f"{abs(forward_difference(f_of_a, a0, 1e-5) - exact):.1e} (expected: about 1e-11 and 1e-6); "
           f"the smallest central error, {err_ctr[best]:.1e}, is at h = {steps[best]:.0e} (expected near 1e-5: "
           "smaller steps lose digits to rounding)")
fig, ax = plt.subplots(figsize=(5.6, 3.6))
ax.loglog(steps, err_fwd, "o-", ms=3, label="forward  (f(a+h) − f(a)) / h")
ax.loglog(steps, err_ctr, "s-", ms=3, label="central  (f(a+h) − f(a−h)) / 2h")
ax.set(xlabel="step h", ylabel="|numerical − exact|", title="error of a numerical derivative (float64)")
ax.grid(alpha=0.3, which="both")
ax.legend(fontsize=8)
fig.tight_layout()
print(f"    saved {show_figure(savefig(fig, args.out / '01_finite_differences.png', dpi=200))}")
plt.close(fig)


# %% [markdown]
# ## 2. The chain rule, by hand
#
# The value and the gradient of every node of f (`chain_rule_by_hand`, above),
# against central differences.

# %%
print("    node           value      d f / d node")
for node, (value, grad) in hand.items():
    print(f"    {node:<12} {value:9.5f}   {grad:9.5f}")
fd_b = central_difference(lambda b: f_of_a(a0, b), b0, 1e-5)
finding(2, f"chain rule by hand against central differences: |Δ d f/d a| = "
           f"{abs(hand['a'][1] - central_difference(f_of_a, a0, 1e-5)):.1e}, |Δ d f/d b| = "
           f"{abs(hand['b'][1] - fd_b):.1e} (expected < 1e-9)")


# %% [markdown]
# ## 3. A scalar engine in thirty lines
#
# `Scalar` records how each value was computed and runs the chain rule backwards; then
# tinyseg's `Tensor` does the same on the same expression, and its graph is drawn.

# %%
# --8<-- [start:scalar]
class Scalar:
    """A float that remembers how it was computed, so that it can be differentiated."""

    def __init__(self, value: float, parents: tuple = (), local_grads: tuple = ()):
        self.value, self.grad = value, 0.0
        self.parents = parents
        self.local_grads = local_grads  # d(self)/d(parent), one per parent

    def __add__(self, other: "Scalar") -> "Scalar":
        return Scalar(self.value + other.value, (self, other), (1.0, 1.0))

    def __mul__(self, other: "Scalar") -> "Scalar":
        return Scalar(self.value * other.value, (self, other),
                      (other.value, self.value))

    def tanh(self) -> "Scalar":
        t = math.tanh(self.value)
        return Scalar(t, (self,), (1.0 - t * t,))

    def backward(self) -> None:
        # Reverse topological order: a node is processed after every node that uses it.
        order, seen = [], set()

        def visit(node: "Scalar") -> None:  # recursive here; tinyseg's engine is not
            if id(node) not in seen:
                seen.add(id(node))
                for p in node.parents:
                    visit(p)
                order.append(node)

        visit(self)
        self.grad = 1.0
        for node in reversed(order):
            for parent, local in zip(node.parents, node.local_grads):
                parent.grad += local * node.grad  # chain rule; += accumulates over uses
# --8<-- [end:scalar]


def scalar_demo(a: float = 0.5, b: float = -1.5) -> tuple[float, float]:
    """The toy engine on f = tanh(a·b + a), against the chain rule by hand."""
    sa, sb = Scalar(a), Scalar(b)
    f = (sa * sb + sa).tanh()
    f.backward()
    hand = chain_rule_by_hand(a, b)
    return max(abs(sa.grad - hand["a"][1]), abs(sb.grad - hand["b"][1])), f.value


# %%
err, value = scalar_demo(a0, b0)
finding(3, f"toy Scalar engine: f = {value:.6f}; |autodiff − chain rule by hand| = {err:.1e} (expected < 1e-15)")
# --8<-- [start:draw_graph]
a = ts.Tensor(xp.asarray(a0), requires_grad=True, name="a")
b = ts.Tensor(xp.asarray(b0), requires_grad=True, name="b")
u = a * b
v = u + a
f = F.tanh(v)
for node in (u, v, f):
    node.retain_grad()              # keep the gradients of intermediates, to show
f.backward(retain_graph=True)       # keep the graph, to draw it
fig = draw_graph(f, values=True, grads=True)
# --8<-- [end:draw_graph]
print(f"    saved {show_figure(savefig(fig, args.out / '01_chain_rule_graph.png', dpi=200))}")
plt.close(fig)
tensor_err = max(abs(float(ts.as_numpy(t.grad)) - hand[k][1])
                 for t, k in ((a, "a"), (b, "b"), (u, "u = a·b"), (v, "v = u + a"), (f, "f = tanh v")))
finding(4, f"tinyseg's Tensor on the same expression: max |grad − chain rule by hand| over all five nodes = "
           f"{tensor_err:.1e} (expected < 1e-15)")


# %% [markdown]
# ## 4. The array engine
#
# The same engine on arrays: a shared subexpression, then broadcasting.

# %%
# --8<-- [start:array_engine]
# On arrays: the graph is recorded as ops are called; u is used twice.
a = ts.Tensor(xp.asarray([0.5, 1.0, -2.0]), requires_grad=True, name="a")
b = ts.Tensor(xp.asarray([-1.5, 0.3, 0.7]), requires_grad=True, name="b")
u = a * b + a
f = F.sum(F.exp(-(u * u)))
f.backward()
# --8<-- [end:array_engine]
uu = ts.as_numpy(u.data)
hand_a = -2 * uu * np.exp(-uu ** 2) * (ts.as_numpy(b.data) + 1)
finding(5, f"array engine, shared subexpression: max |grad a − hand| = "
           f"{np.abs(ts.as_numpy(a.grad) - hand_a).max():.1e} (expected < 1e-12)")


# %%
# --8<-- [start:broadcast]
# Broadcasting: b of shape (4,) is added to each of the 3 rows of x, so its gradient
# is the upstream gradient summed over those rows (sum_to, adjoint of broadcast_to).
x = ts.Tensor(xp.ones((3, 4)), requires_grad=True)
b = ts.Tensor(xp.asarray([1.0, 2.0, 3.0, 4.0]), requires_grad=True)
y = x + b                               # (3, 4)
y.backward(xp.arange(12.0).reshape(3, 4))
# --8<-- [end:broadcast]
finding(6, f"broadcast gradient: grad b = {ts.as_numpy(b.grad).tolist()} (expected the column sums of "
           "arange(12).reshape(3, 4): [12, 15, 18, 21])")


# %% [markdown]
# ## 5. Checking gradients
#
# Central differences in float64 with a random upstream gradient catch a wrong backward.

# %%
# --8<-- [start:wrong_op]
class WrongSigmoidOp(ts.Op):
    """σ(x) with a classic mistake in backward: σ(1−σ) without the upstream gradient."""

    def forward(self, x):  # noqa: ANN001, ANN201
        xp = ts.get_array_module(x)
        self.y = 1.0 / (1.0 + xp.exp(-x))
        return self.y

    def backward(self, gy):  # noqa: ANN001, ANN201
        return self.y * (1.0 - self.y)  # should be gy * self.y * (1 - self.y)
# --8<-- [end:wrong_op]


# %%
# --8<-- [start:gradcheck]
# Gradient checking: central differences in float64 with a random upstream gradient.
rng = np.random.default_rng(0)
x64 = xp.asarray(rng.standard_normal((4, 3)))
ts.check_backward(lambda x: F.exp(x) * x, [x64], name="exp(x)·x")
finding(7, "check_backward(exp(x)·x): passes "
           "(expected: passes, relative error < 1e-6)")
try:
    ts.check_backward(lambda x: WrongSigmoidOp()(x), [x64], name="wrong sigmoid")
    caught = "NOT caught"
except AssertionError as e:
    caught = str(e).split(":")[0]
finding(8, f"a sigmoid whose backward forgets the upstream gradient: {caught} "
           "(expected: 'gradient check failed for wrong sigmoid, "
           "input 0, index ...')")
# --8<-- [end:gradcheck]


# %%
# Depth: the engine walks the graph iteratively, so deep graphs are fine.
depth = 200 if args.fast else 10_000
y = ts.Tensor(xp.asarray([1.0]), requires_grad=True)
z = y
for _ in range(depth):
    z = z * 1.0001
z.sum().backward()
finding(9, f"a chain of {depth} multiplications: d/dy = {float(ts.as_numpy(y.grad)[0]):.6f} "
           f"(expected 1.0001^{depth} = {1.0001 ** depth:.6f})")


# %% [markdown]
# ## 6. Training a network
#
# A two-layer perceptron on two moons: gradient descent and Adam written by hand, Adam
# checked against `tinyseg.optim.Adam`, and the training loop that `tinyseg.fit` runs.

# %%
# --8<-- [start:mlp]
def two_moons(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """n points on two interleaved half-circles, two classes no line separates."""
    angle = rng.uniform(0, np.pi, n)
    t = rng.permutation(np.arange(n) % 2)
    x = np.stack([np.cos(angle) + t * 1.0 - 0.5,
                  np.sin(angle) * (1 - 2 * t) + t * 0.5 - 0.25], axis=1)   # (n, 2)
    return x + rng.normal(0, 0.12, x.shape), t


def init_mlp(hidden: int, rng: np.random.Generator, xp) -> list[ts.Parameter]:
    """Weights and biases of a 2 → hidden → 2 perceptron, Glorot-scaled."""
    shapes = [(2, hidden), (hidden,), (hidden, 2), (2,)]
    scale = [math.sqrt(1 / 2), 0.0, math.sqrt(1 / hidden), 0.0]
    return [ts.Parameter(xp.asarray(s * rng.standard_normal(shape)))
            for shape, s in zip(shapes, scale)]


def linear(params: list[ts.Parameter], x: ts.Tensor) -> ts.Tensor:
    """Two logits per point from a straight boundary: x W + b (logistic regression)."""
    W, b = params
    return F.matmul(x, W) + b          # (N, 2)


def mlp(params: list[ts.Parameter], x: ts.Tensor) -> ts.Tensor:
    """Two logits per point: tanh(x W₁ + b₁) W₂ + b₂."""
    W1, b1, W2, b2 = params
    h = F.tanh(F.matmul(x, W1) + b1)   # (N, hidden); b1 broadcasts over the N rows
    return F.matmul(h, W2) + b2        # (N, 2)
# --8<-- [end:mlp]


# --8<-- [start:optimizers]
class HandSGD:
    """Gradient descent: θ ← θ − η g."""

    def __init__(self, params: list[ts.Parameter], lr: float) -> None:
        self.params, self.lr = params, lr

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        for p in self.params:
            p.data = p.data - self.lr * p.grad


class HandAdam(HandSGD):
    """Adam: a step along the running mean of g, over its running root mean square."""

    def __init__(self, params: list[ts.Parameter], lr: float = 3e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        super().__init__(params, lr)
        self.b1, self.b2, self.eps, self.t = betas[0], betas[1], eps, 0
        self.m = [0.0 * p.data for p in params]   # first moment, per parameter element
        self.v = [0.0 * p.data for p in params]   # second moment

    def step(self) -> None:
        self.t += 1
        for p, m, v in zip(self.params, self.m, self.v):
            m[...] = self.b1 * m + (1 - self.b1) * p.grad
            v[...] = self.b2 * v + (1 - self.b2) * p.grad ** 2
            m_hat = m / (1 - self.b1 ** self.t)   # bias correction: m and v start at 0
            v_hat = v / (1 - self.b2 ** self.t)
            p.data = p.data - self.lr * m_hat / ((v_hat) ** 0.5 + self.eps)
# --8<-- [end:optimizers]


# --8<-- [start:loop]
def train(net, params: list[ts.Parameter], opt, x: ts.Tensor, t,
          steps: int) -> list[float]:
    """The training loop: forward, clear old gradients, backward, update."""
    losses = []
    for _ in range(steps):
        loss = F.cross_entropy(net(params, x), t)  # mean −log softmax(z)_t [ZX18 Eq. 1]
        opt.zero_grad()
        loss.backward()                             # fills p.grad for every parameter
        opt.step()                                 # each parameter against its gradient
        losses.append(loss.item())
    return losses
# --8<-- [end:loop]


def accuracy(net, params: list[ts.Parameter], x: ts.Tensor, t: np.ndarray) -> float:
    with ts.no_grad():
        z = ts.as_numpy(net(params, x).data)
    return float(np.mean(z.argmax(axis=1) == t))


def copy(params: list[ts.Parameter]) -> list[ts.Parameter]:
    return [ts.Parameter(p.data.copy()) for p in params]


# %%
rng = np.random.default_rng(1)
x_np, t_np = two_moons(200 if args.fast else 400, rng)
x, t = ts.Tensor(xp.asarray(x_np)), xp.asarray(t_np)
n_steps = 150 if args.fast else 600
start = init_mlp(16, rng, xp)
sgd_params = copy(start)
sgd_losses = train(mlp, sgd_params, HandSGD(sgd_params, lr=0.1), x, t, n_steps)


# %%
# --8<-- [start:adam_check]
mine, theirs = copy(start), copy(start)
train(mlp, mine, HandAdam(mine, lr=0.01), x, t, 20)
train(mlp, theirs, ts.optim.Adam(theirs, lr=0.01), x, t, 20)
adam_diff = max(float(abs(ts.as_numpy(p.data) - ts.as_numpy(q.data)).max())
                for p, q in zip(mine, theirs))
# --8<-- [end:adam_check]
finding(10, f"Adam written by hand against tinyseg.optim.Adam, 20 steps in float64: max |Δ parameter| = "
            f"{adam_diff:.1e} (expected < 1e-12)")


# %%
adam_params = copy(start)
adam_losses = train(mlp, adam_params, HandAdam(adam_params, lr=0.01), x, t, n_steps)
acc_sgd, acc_adam = accuracy(mlp, sgd_params, x, t_np), accuracy(mlp, adam_params, x, t_np)
line = [ts.Parameter(xp.zeros((2, 2))), ts.Parameter(xp.zeros(2))]
train(linear, line, HandAdam(line, lr=0.01), x, t, n_steps)
acc_line = accuracy(linear, line, x, t_np)
finding(11, f"two-layer perceptron on two moons, {n_steps} steps from the same start: loss "
            f"{sgd_losses[0]:.3f} → {sgd_losses[-1]:.3f} with gradient descent (lr 0.1), → {adam_losses[-1]:.3f} "
            f"with Adam (lr 0.01); training accuracy {acc_sgd:.2f} and {acc_adam:.2f}, against {acc_line:.2f} "
            "for a straight boundary trained the same way (expected: Adam ends lowest; the network beats the "
            "straight line)")

fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
axes[0].plot(sgd_losses, label="gradient descent, lr 0.1")
axes[0].plot(adam_losses, label="Adam, lr 0.01")
axes[0].set(xlabel="step", ylabel="mean cross-entropy", yscale="log", title="training loss")
axes[0].legend(fontsize=8)
axes[0].grid(alpha=0.3)
g0, g1 = np.meshgrid(np.linspace(-2, 2, 120), np.linspace(-1.5, 1.5, 90))
grid = ts.Tensor(xp.asarray(np.stack([g0.ravel(), g1.ravel()], axis=1)))
with ts.no_grad():
    z = ts.as_numpy(mlp(adam_params, grid).data)
p1 = np.exp(z[:, 1] - np.logaddexp(z[:, 0], z[:, 1])).reshape(g0.shape)
axes[1].contourf(g0, g1, p1, levels=[0, 0.5, 1], colors=["#cfe2f3", "#f4cccc"])
axes[1].scatter(x_np[:, 0], x_np[:, 1], c=t_np, cmap="coolwarm", s=8, edgecolors="none")
axes[1].set(xlabel="x₁", ylabel="x₂", title="decision regions after Adam")
fig.tight_layout()
print(f"    saved {show_figure(savefig(fig, args.out / '01_mlp.png', dpi=200))}")
plt.close(fig)


# %% [markdown]
# ### The same engine runs the paper's FCN
#
# Its recorded graph, with the shape after every op.

# %%
def count_ops(t: ts.Tensor) -> int:
    """Number of ops in the recorded graph that ends in `t`."""
    seen, stack = set(), [t.creator]
    while stack:
        op = stack.pop()
        if op is None or id(op) in seen:
            continue
        seen.add(id(op))
        stack.extend(x.creator for x in op.inputs)
    return len(seen)


# %%
model = ts.models.FCN(ts.models.FCN_CONFIGS["fcn1"])
logits = model(ts.Tensor(np.zeros((2, 1, 40, 40), np.float32)))
fig = draw_graph(logits)
print(f"    saved {show_figure(savefig(fig, args.out / '01_fcn_graph.png', dpi=150))}")
plt.close(fig)
finding(12, f"the FCN of lesson 02 is a graph of {count_ops(logits)} ops on {model.num_parameters():,} "
            "parameters (expected 10 ops on 2,233,100 parameters)")
