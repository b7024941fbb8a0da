"""The package's shape: layering, the public names, and where cupy may be imported."""
import ast
import pathlib

import probdl
import probdl.testing  # noqa: F401  (importing every module must leave probdl.tensor the function)

ROOT = pathlib.Path(probdl.__file__).parent

# Each layer may import only the layers listed before it (DESIGN.md, "The layers").
LAYERS = ["backend", "tensor", "serialization", "nn", "optim", "data", "training", "distributions", "primitives",
          "handlers", "infer", "gp"]

ISSUE_OPS = """add sub mul div neg pow exp log log1p expm1 sqrt square abs tanh sigmoid log_sigmoid softplus relu
leaky_relu elu gelu silu sin cos arctan clip maximum minimum where logaddexp xlogy lgamma digamma polygamma
trigamma erf erfc log_ndtr ndtr ndtri floor ceil round sign eq ne lt le gt ge sum mean prod max min logsumexp
var std cumsum norm argmax argmin softmax log_softmax reshape transpose permute swapaxes broadcast_to expand
squeeze unsqueeze flatten concatenate stack split flip pad repeat tile diagonal diag_embed tril triu
take_along_axis gather index_add scatter_add one_hot matmul einsum outer cholesky solve_triangular
cholesky_solve solve inv slogdet logdet trace eigh det normal uniform gamma beta poisson binomial categorical
multinomial permutation randint grad value_and_grad vjp jacobian hessian no_grad enable_grad tensor zeros ones
full arange linspace eye zeros_like ones_like randn rand set_rng_seed set_default_dtype device Tensor""".split()

TORCH_METHODS = """exp log log1p expm1 sqrt square abs tanh sigmoid relu sin cos sum mean prod max min logsumexp var std
cumsum norm argmax argmin softmax log_softmax reshape view transpose permute swapaxes expand squeeze unsqueeze
flatten split chunk flip repeat repeat_interleave diagonal diag_embed tril triu gather index_add scatter_add
index_select matmul det logdet slogdet trace outer clamp clip lgamma digamma erf erfc polygamma pow neg
reciprocal detach backward item numpy tolist to cpu float double clone any all isnan isfinite""".split()


def _imports(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level:  # relative: resolve against the file's package
                parts = path.relative_to(ROOT.parent).with_suffix("").parts[: -node.level]
                mod = ".".join(parts + ((mod,) if mod else ()))
            found.add(mod)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


def test_every_issue_op_is_a_top_level_function():
    missing = [name for name in ISSUE_OPS if not hasattr(probdl, name)]
    assert not missing
    assert callable(probdl.tensor) and probdl.tensor([1.0]).shape == (1,)


def test_tensor_has_the_pytorch_methods():
    assert not [m for m in TORCH_METHODS if not hasattr(probdl.Tensor, m)]


def test_layers_import_only_downward():
    bad = []
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT).parts
        layer = rel[0].removesuffix(".py")
        if layer not in LAYERS:
            continue
        allowed = set(LAYERS[: LAYERS.index(layer) + 1])
        for mod in _imports(path):
            if mod.startswith("probdl."):
                target = mod.split(".")[1]
                if target in LAYERS and target not in allowed:
                    bad.append(f"{path.relative_to(ROOT)} imports {mod}")
    assert not bad, bad


def test_only_the_backend_imports_cupy():
    offenders = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*.py")
                 if p.relative_to(ROOT).parts[0] != "backend"
                 and any(m == "cupy" or m.startswith("cupy") for m in _imports(p))]
    assert not offenders
