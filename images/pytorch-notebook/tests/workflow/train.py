"""Trains a tiny model on the CPU until its loss falls: y = 3x - 1 with a little noise."""
import torch

torch.manual_seed(0)
x = torch.linspace(-1, 1, 256).unsqueeze(1)
y = 3 * x - 1 + 0.01 * torch.randn_like(x)
model = torch.nn.Sequential(torch.nn.Linear(1, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
optimiser = torch.optim.Adam(model.parameters(), lr=0.05)
loss_fn = torch.nn.MSELoss()
losses = []
for step in range(300):
    optimiser.zero_grad()
    loss = loss_fn(model(x), y)
    loss.backward()
    optimiser.step()
    losses.append(loss.item())
print(f"loss {losses[0]:.4f} -> {losses[-1]:.6f}")
assert losses[-1] < losses[0] / 100, losses[-1]
assert losses[-1] < 1e-3, losses[-1]
