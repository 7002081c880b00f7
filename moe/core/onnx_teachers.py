"""Teachers of any architecture: ONNX files, run by ONNX Runtime.

PyTorch, Keras and JAX all export ONNX. An ONNX file is a graph of operators and weights, not a
pickle, so loading a stranger's file runs none of their code. Such a teacher only answers: it has
no weights the MoE could take, so its knowledge reaches the MoE by distillation alone
(``moe.core.methods``), and its expert starts fresh (``moe.core.merge``).

The file may carry what a teacher file of ours carries, as JSON in its metadata (``export_teacher``
writes them): ``mean`` and ``std`` (the input normalisation), ``class_ids`` and ``class_names``.
"""

from __future__ import annotations

import copy
import io
import json
import warnings
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..base.errors import MissingFile, MoEError
from ..base.formats import atomic_path

METADATA_KEYS = ("mean", "std", "class_ids", "class_names")


def is_onnx(path: str | Path) -> bool:
    return Path(path).suffix.lower() == ".onnx"


def _reason(error: Exception) -> str:
    """An ONNX Runtime error on one line, short."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _runtime():
    try:
        import onnxruntime
    except ImportError:  # a dependency of the project; this is a broken environment
        raise MoEError("onnxruntime is not installed: pip install onnxruntime (or onnxruntime-gpu)") from None
    return onnxruntime


def _session(path: Path, device: torch.device, model_bytes: bytes | None = None):
    """One session per teacher and stage (from ``model_bytes`` where given, else the file). Its threads sleep between runs instead of spinning, so
    that they leave the cores to torch: the two run in turns, never at once."""
    ort = _runtime()
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only: a fault becomes our one line, not ONNX Runtime's log
    providers = ["CPUExecutionProvider"]
    if device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, ("CUDAExecutionProvider", {"device_id": device.index or 0}))
    try:
        return ort.InferenceSession(model_bytes or str(path), sess_options=options, providers=providers)
    except Exception as e:  # protobuf, graph or operator faults: the file is not a model we can run
        raise MoEError(f"{path}: not an ONNX model ONNX Runtime can run ({_reason(e)})") from None


class OnnxTeacher(nn.Module):
    """An ONNX classifier behind a frozen torch teacher's interface: a normalised N x 3 x H x W batch
    in, logits out, on the batch's device. Images of another size than the model's input are resized
    first (bilinear with antialiasing; on normalised values this equals resizing the images). A model
    exported for a fixed batch size gets batches of that size (the last one padded)."""

    def __init__(self, session, path: Path, input_size: tuple[int, int] | None):
        super().__init__()
        self.session, self.path, self.input_size = session, Path(path), input_size
        self.input_name = session.get_inputs()[0].name
        batch = session.get_inputs()[0].shape[0]
        self.fixed_batch = batch if isinstance(batch, int) and batch > 0 else None
        # no weights to train or save; this empty tensor tells callers which device to feed it on
        self.register_parameter("device_anchor", nn.Parameter(torch.zeros(0), requires_grad=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        device = x.device
        with torch.autocast(device.type, enabled=False):
            x = x.detach().float()
            if self.input_size is not None and tuple(x.shape[-2:]) != self.input_size:
                x = F.interpolate(x, size=self.input_size, mode="bilinear", align_corners=False, antialias=True)
            x = x.contiguous().cpu()
            if self.fixed_batch is None:
                out = torch.from_numpy(self.session.run(None, {self.input_name: x.numpy()})[0])
            else:
                out = torch.cat([self._run_padded(chunk) for chunk in x.split(self.fixed_batch)])
        return out.to(device)

    def _run_padded(self, chunk: torch.Tensor) -> torch.Tensor:
        padded = F.pad(chunk, (0, 0, 0, 0, 0, 0, 0, self.fixed_batch - len(chunk)))
        return torch.from_numpy(self.session.run(None, {self.input_name: padded.numpy()})[0])[: len(chunk)]

    def extra_repr(self) -> str:
        return f"{self.path}, input {self.input_size or 'any size'}"


def load_onnx_teacher(path: str | Path, num_classes: int, image_size: int | None = None,
                      device: torch.device | None = None) -> OnnxTeacher:
    """The teacher, checked before any work: one input of N x 3 x H x W floats, and ``num_classes``
    outputs per image (found by running two blank images). ``image_size``: what the task feeds it
    where the model takes any size."""
    path = Path(path)
    if not path.is_file():
        raise MissingFile(path)
    session = _session(path, device or torch.device("cpu"))
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise MoEError(f"{path}: takes {len(inputs)} inputs; a teacher takes one, a batch of images")
    shape = inputs[0].shape
    if len(shape) != 4:
        raise MoEError(f"{path}: its input has {len(shape)} dimensions {list(shape)}; a teacher takes images, "
                       "N x 3 x H x W")
    if isinstance(shape[1], int) and shape[1] != 3:
        raise MoEError(f"{path}: its input has {shape[1]} channels; a teacher takes RGB images, N x 3 x H x W")
    if inputs[0].type != "tensor(float)":
        raise MoEError(f"{path}: its input is {inputs[0].type}; a teacher takes float32 images (tensor(float))")
    fixed = all(isinstance(d, int) and d > 0 for d in shape[2:])
    teacher = OnnxTeacher(session, path, (shape[2], shape[3]) if fixed else None)
    probe_size = teacher.input_size or (image_size or 32, image_size or 32)
    try:
        out = teacher(torch.zeros(2, 3, *probe_size))
    except Exception as e:
        raise MoEError(f"{path}: fails on a batch of 2 images of {probe_size[0]}x{probe_size[1]} ({_reason(e)})") from None
    if out.dim() != 2 or out.shape[0] != 2:
        raise MoEError(f"{path}: gives outputs of shape {list(out.shape)} for 2 images; a teacher gives "
                       "N x classes logits")
    if out.shape[1] != num_classes:
        raise MoEError(f"{path}: gives {out.shape[1]} outputs per image, but its teacher in the task spec has "
                       f"{num_classes} classes")
    return teacher


def _read_model(path: Path):
    import onnx

    if not path.is_file():
        raise MissingFile(path)
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:
        raise MoEError(f"{path}: not an ONNX model (it does not parse as one)") from None
    if any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer):
        raise MoEError(f"{path}: keeps its weights in separate files; save the model as one .onnx file")
    return model


def onnx_metadata(path: str | Path) -> dict:
    """What the file states of ``METADATA_KEYS`` (values JSON-decoded); each must be well formed."""
    path = Path(path)
    props = {p.key: p.value for p in _read_model(path).metadata_props}
    out = {}
    for key in METADATA_KEYS:
        if key not in props:
            continue
        try:
            out[key] = json.loads(props[key])
        except ValueError:
            raise MoEError(f"{path}: metadata '{key}' is not JSON ({props[key][:60]!r})") from None
    for key in ("mean", "std"):
        value = out.get(key)
        if value is not None and not (isinstance(value, list) and len(value) == 3
                                      and all(isinstance(v, (int, float)) for v in value)):
            raise MoEError(f"{path}: metadata '{key}' must be three numbers (RGB), found {value!r}")
    if "std" in out and min(out["std"]) <= 0:
        raise MoEError(f"{path}: metadata 'std' must be positive, found {out['std']}")
    return out


def _stating(model, metadata: dict):
    """``model`` (an ONNX ModelProto) with ``metadata`` (JSON values) in its metadata, the rest kept."""
    kept = [(p.key, p.value) for p in model.metadata_props if p.key not in metadata]
    del model.metadata_props[:]
    for key, value in [*kept, *((k, json.dumps(v)) for k, v in metadata.items())]:
        model.metadata_props.add(key=key, value=value)
    return model


def write_with_metadata(source: str | Path, out: str | Path, **metadata) -> None:
    """A copy of ``source`` stating ``metadata``, written atomically."""
    import onnx

    model = _stating(_read_model(Path(source)), metadata)
    with atomic_path(out) as tmp:
        onnx.save(model, str(tmp))


def _onnx_bytes(model: nn.Module, image_size: int) -> bytes:
    """``model`` as ONNX taking N x 3 x image_size x image_size, any N. The TorchScript exporter: it
    needs only the onnx package and runs in a second."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(copy.deepcopy(model).cpu().eval(), (torch.zeros(2, 3, image_size, image_size),), buffer,
                          input_names=["images"], output_names=["logits"],
                          dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}}, dynamo=False)
    return buffer.getvalue()


def resolve_teacher_runtime(choice: str, device: torch.device) -> str:
    """``auto``: ONNX Runtime on a CPU, where the course-CNN teachers took 30 % less time than in torch
    with BatchNorm folded (docs/results.md); torch on a GPU."""
    if choice == "auto":
        return "onnxruntime" if device.type == "cpu" else "torch"
    return choice


def on_onnx_runtime(model: nn.Module, image_size: int, device: torch.device) -> OnnxTeacher:
    """A frozen torch teacher exported in memory and run by ONNX Runtime: the same answers to float
    rounding (tests/test_onnx_teachers.py)."""
    name = Path(f"<{type(model).__name__} in memory>")
    return OnnxTeacher(_session(name, device, _onnx_bytes(model, image_size)), name, (image_size, image_size)).to(device)


def export_teacher(model: nn.Module, image_size: int, out: str | Path, **metadata) -> None:
    """``model`` as an ONNX file stating ``metadata``, written atomically (``_onnx_bytes``)."""
    import onnx

    exported = _stating(onnx.load_from_string(_onnx_bytes(model, image_size)), metadata)
    with atomic_path(out) as tmp:
        onnx.save(exported, str(tmp))
