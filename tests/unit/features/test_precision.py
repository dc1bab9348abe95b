"""clip.precision on a CPU: fp16 refused (or fp32 instead, for predict), bf16 warned, fp32 and GPUs untouched."""
import pytest
import torch

from pipeline.config.data_params import ClipParams
from pipeline.core.errors import UserError
from pipeline.features.clip import cpu_precision

CPU, GPU = torch.device("cpu"), torch.device("cuda")


def test_fp16_on_a_cpu_is_refused_with_the_fix():
    with pytest.raises(UserError, match="clip.precision = fp16 needs a CUDA GPU.*set clip.precision: fp32"):
        cpu_precision(ClipParams(precision="fp16"), CPU)


def test_predict_encodes_fp16_params_in_fp32_on_a_cpu_and_says_so(capsys):
    params = cpu_precision(ClipParams(precision="fp16"), CPU, fp16_on_cpu="fp32")
    assert params == ClipParams(precision="fp32")
    assert "encoding in fp32 on this CPU" in capsys.readouterr().err


def test_bf16_on_a_cpu_runs_with_a_warning(capsys):
    assert cpu_precision(ClipParams(precision="bf16"), CPU) == ClipParams(precision="bf16")
    assert capsys.readouterr().err.startswith("warning: clip.precision = bf16 on a CPU")


@pytest.mark.parametrize("params, device", [(ClipParams(precision="fp32"), CPU), (ClipParams(precision="fp16"), GPU),
                                            (ClipParams(precision="bf16"), GPU)])
def test_fp32_and_any_precision_on_a_gpu_pass_silently(capsys, params, device):
    assert cpu_precision(params, device) == params and capsys.readouterr().err == ""
