"""tinyseg: a from-scratch NumPy/CuPy rebuild of Zhu et al., *Adversarial Deep Structured Nets
for Mass Segmentation from Mammograms* (ISBI 2018, arXiv:1710.09288).

    import tinyseg as ts
    x = ts.Tensor(np.ones((2, 3)), requires_grad=True)
    y = ts.F.exp(x).sum(); y.backward(); x.grad

Importing tinyseg needs neither CuPy, a GPU nor pydicom.
"""
from __future__ import annotations

from ._version import __version__

from . import functions
from . import functions as F
from .autodiff import Op, Parameter, Tensor, as_tensor, is_grad_enabled, no_grad
from .backend import as_numpy, get_array_module, gpu_available, to_device
from . import utils
from .gradcheck import GRADCHECK_CASES, check_backward, register_gradcheck
from . import adversarial, metrics, models, nn, optim  # noqa: E402  (after the ops they build on)
from .models import VARIANTS, build_model  # noqa: E402
from .config import TrainConfig  # noqa: E402
from .errors import UserError  # noqa: E402
from .runs import Run, load_run  # noqa: E402
from .train import fit  # noqa: E402

__all__ = ["F", "GRADCHECK_CASES", "Op", "Parameter", "Run", "Tensor", "TrainConfig", "UserError", "VARIANTS",
           "__version__",
           "adversarial", "as_numpy", "as_tensor", "build_model", "fit", "load_run", "metrics", "models", "nn",
           "optim",
           "check_backward", "functions", "get_array_module", "gpu_available", "is_grad_enabled", "no_grad",
           "register_gradcheck", "to_device", "utils"]
