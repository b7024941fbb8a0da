"""Helpers shared by the data tests."""
from probdl.data import Dataset


class Squares(Dataset):
    """A sized dataset of i² that is not a TensorDataset (the per-sample path)."""

    def __init__(self, n):
        self.n = n

    def __getitem__(self, i):
        if not 0 <= i < self.n:
            raise IndexError(i)
        return i * i

    def __len__(self):
        return self.n
