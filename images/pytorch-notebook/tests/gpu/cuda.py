"""On a GPU: CUDA is available, and a matrix product on the GPU matches the CPU's."""
import torch

assert torch.cuda.is_available(), "torch.cuda.is_available() is False"
print("device:", torch.cuda.get_device_name(0), "CUDA", torch.version.cuda)
torch.manual_seed(0)
a = torch.randn(512, 512, dtype=torch.float64)
b = torch.randn(512, 512, dtype=torch.float64)
on_gpu = (a.cuda() @ b.cuda()).cpu()
assert torch.allclose(on_gpu, a @ b, rtol=1e-9, atol=1e-9), (on_gpu - a @ b).abs().max()
print("GPU product matches the CPU's")
