"""Tensor maths on the CPU gives known results, and autograd differentiates."""
import torch

a = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
b = torch.tensor([[5.0, 6.0], [7.0, 8.0]])
assert torch.equal(a @ b, torch.tensor([[19.0, 22.0], [43.0, 50.0]]))
assert torch.allclose(torch.linalg.inv(a) @ a, torch.eye(2), atol=1e-6)
assert torch.linalg.det(a).item() == -2.0 or abs(torch.linalg.det(a).item() + 2.0) < 1e-5
x = torch.tensor(3.0, requires_grad=True)
(x**3).backward()
assert x.grad.item() == 27.0  # d/dx x^3 = 3x^2
import numpy as np  # noqa: E402  (the numpy bridge works with the stack's numpy)

assert np.array_equal(torch.arange(4).numpy(), np.arange(4))
print("torch", torch.__version__, "threads", torch.get_num_threads())
