# dev/soft_ce_reference.py: PyTorch values of the soft-target cross-entropy at temperature
# (kernels/cross_entropy.h) for tests/test_ops.cpp's OpSoftCrossEntropy.MatchesPyTorch: prints the
# inputs it uses and the loss and gradient that autograd computes, in double, as C++ initializers.
import torch

student = torch.tensor([[1.5, -0.25, 0.75], [-2.0, 3.0, 0.5]], dtype=torch.float64, requires_grad=True)
teacher = torch.tensor([[0.5, 0.25, -1.0], [1.0, 2.0, -3.0]], dtype=torch.float64)
for tau in (1.0, 2.0):
    p = torch.softmax(teacher / tau, dim=-1)
    loss_rows = -(tau * tau) * (p * torch.log_softmax(student / tau, dim=-1)).sum(-1)
    loss = loss_rows.mean()
    (grad,) = torch.autograd.grad(loss, student)
    print(f"tau {tau}: losses {{{', '.join(f'{v:.12g}' for v in loss_rows.tolist())}}}")
    print(f"         mean-loss gradient {{{', '.join(f'{v:.12g}' for v in grad.flatten().tolist())}}}")
