"""Datasets and mini-batch loading, with PyTorch's names: ``Dataset``, ``TensorDataset``, ``DataLoader``, ..."""
from .dataloader import DataLoader, default_collate, default_convert
from .dataset import ConcatDataset, Dataset, Subset, TensorDataset, random_split

__all__ = ["Dataset", "TensorDataset", "Subset", "ConcatDataset", "DataLoader", "random_split", "default_collate",
           "default_convert"]
