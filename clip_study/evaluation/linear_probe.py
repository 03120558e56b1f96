"""The study's linear probe: one ``nn.Linear`` trained with Adam on frozen image features."""

from __future__ import annotations

from typing import Iterator

import numpy as np

from clip_study.evaluation.heads import LinearHead


def train_linear_probe(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, num_classes: int,
                       epochs: int, lr: float, batch_size: int, weight_decay: float,
                       seed: int) -> Iterator[tuple[int, float, np.ndarray, LinearHead]]:
    """Train one ``nn.Linear`` with Adam on frozen features (the study's probe).

    Yields ``(epoch, mean train loss, test scores, the layer as a head on raw features)`` after each epoch, so
    callers can log a curve and keep the chosen epoch's weights (copied: training goes on).
    Seeded initialisation and shuffling make it deterministic on CPU.
    """
    import torch  # imported here: the stages that only score embeddings need no torch (~2 s to import)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # batches of 64 x 512: syncing threads costs more than it saves (8 s vs 1.5 s)
    try:
        generator = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        model = torch.nn.Linear(train_x.shape[1], num_classes)
        optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
        x, y = torch.from_numpy(train_x).float(), torch.from_numpy(train_y).long()
        test = torch.from_numpy(test_x).float()
        for epoch in range(1, epochs + 1):
            model.train()
            total = 0.0
            for batch in torch.randperm(len(x), generator=generator).split(batch_size):
                loss = torch.nn.functional.cross_entropy(model(x[batch]), y[batch])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += loss.item() * len(batch)
            model.eval()
            with torch.inference_mode():
                weights, bias = (tensor.detach().numpy().copy() for tensor in (model.weight, model.bias))
                head = LinearHead(weights, bias, False)
                yield epoch, total / len(x), model(test).numpy(), head
    finally:
        torch.set_num_threads(threads)
